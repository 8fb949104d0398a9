/**
 * Job arrival patterns. Every pattern has the same mean rate, so the rules are compared on the same
 * amount of work and only its shape differs.
 */
import { exponential, seededRandom, type Random } from './prng.js';

export const PATTERNS = ['steady', 'bursty', 'daily'] as const;
export type Pattern = (typeof PATTERNS)[number];
export type DurationShape = 'exponential' | 'fixed';

export interface Workload {
  /** Mean arrivals per hour. */
  jobsPerHour: number;
  /** Arrivals stop after this many hours; the simulation runs on until the last job is done. */
  hours: number;
  /** Mean job run time, seconds. */
  meanDuration: number;
  durationShape: DurationShape;
  /** Jobs per batch in the bursty pattern. */
  burstSize: number;
  /** Daily pattern: the rate swings by ± this fraction of the mean over 24 h. */
  dailySwing: number;
  seed: number;
}

export interface JobSpec {
  arrival: number;
  duration: number;
}

export function generateJobs(pattern: Pattern, workload: Workload): JobSpec[] {
  // Separate streams: the arrival times of one pattern do not shift the durations drawn.
  const arrivalsRandom = seededRandom(workload.seed * 2654435761 + PATTERNS.indexOf(pattern));
  const durationRandom = seededRandom(workload.seed * 40503 + 7919);
  const arrivals = arrivalTimes(pattern, workload, arrivalsRandom);
  return arrivals.map((arrival) => ({ arrival, duration: drawDuration(workload, durationRandom) }));
}

function drawDuration(workload: Workload, random: Random): number {
  return workload.durationShape === 'fixed' ? workload.meanDuration : exponential(random, workload.meanDuration);
}

function arrivalTimes(pattern: Pattern, workload: Workload, random: Random): number[] {
  const horizon = workload.hours * 3600;
  const rate = workload.jobsPerHour / 3600;
  switch (pattern) {
    case 'steady':
      return poisson(rate, horizon, random);
    case 'bursty':
      return poisson(rate / workload.burstSize, horizon, random).flatMap((t) => Array<number>(workload.burstSize).fill(t));
    case 'daily':
      return sinusoidal(rate, workload.dailySwing, horizon, random);
  }
}

function poisson(rate: number, horizon: number, random: Random): number[] {
  const times: number[] = [];
  for (let t = exponential(random, 1 / rate); t < horizon; t += exponential(random, 1 / rate)) times.push(t);
  return times;
}

/** A non-homogeneous Poisson process by thinning: rate(t) = mean × (1 − swing × cos(2πt / 24 h)), quiet at t = 0. */
function sinusoidal(rate: number, swing: number, horizon: number, random: Random): number[] {
  const peak = rate * (1 + swing);
  return poisson(peak, horizon, random).filter((t) => random() * peak < rate * (1 - swing * Math.cos((2 * Math.PI * t) / 86400)));
}

/** Evenly spaced arrivals, for cases with a known answer. */
export function constantArrivals(count: number, interval: number, duration: number): JobSpec[] {
  return Array.from({ length: count }, (_, i) => ({ arrival: i * interval, duration }));
}
