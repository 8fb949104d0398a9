/**
 * Time from enqueue to an executor holding the job: long-poll dequeue (the extension) against plain
 * polling every 1 s (Sourcegraph's default), measured in the same run, p50/p99 per backend.
 *   node --import tsx bench/pickup-latency.ts [--samples=30] [--backends=postgres,pglite]
 */
import { startCoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { backendsFromArgs, measurePickup, numberArg, percentile } from './support.js';

const SAMPLES = numberArg('samples', 30);

console.log(`pickup latency: ${SAMPLES} jobs per mode, enqueue → dequeue response`);
for (const backend of backendsFromArgs()) {
  const c = await startCoordinatorServer(backend);
  try {
    const enqueue = async (queue: string) => (await c.admin('POST', '/api/jobs', { queue, dockerSteps: [{ image: 'x', commands: ['true'] }] })).id as number;
    const options = { samples: SAMPLES, queue: 'codeintel', gapMs: [200, 1000] as [number, number] };
    const longPoll = (await measurePickup(c.url, enqueue, { ...options, mode: 'long-poll' })).pickup;
    const polling = (await measurePickup(c.url, enqueue, { ...options, mode: 'poll-1s' })).pickup;
    const f = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(1)} ms  p99 ${percentile(xs, 99).toFixed(1)} ms`;
    console.log(`${backend.padEnd(9)} long-poll: ${f(longPoll)}   1 s polling: ${f(polling)}   p50 ratio ${(percentile(polling, 50) / percentile(longPoll, 50)).toFixed(1)}x`);
  } finally {
    await c.close();
  }
}
