/** A seeded pseudo-random generator, so the same seed gives the same arrivals and the same table. */

export type Random = () => number;

/** mulberry32: 32-bit state, uniform in [0, 1); small, fast and good enough for a simulation. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An exponentially distributed draw with the given mean (1 − u keeps log away from 0). */
export function exponential(random: Random, mean: number): number {
  return -Math.log(1 - random()) * mean;
}
