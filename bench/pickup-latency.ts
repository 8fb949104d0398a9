/**
 * Time from enqueue to an executor holding the job: long-poll dequeue (the extension) against plain
 * polling every 1 s (Sourcegraph's default), measured in the same run, p50/p99 per backend.
 *   node --import tsx bench/pickup-latency.ts [--samples=30] [--backends=postgres,pglite]
 */
import { executorClient } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { backendsFromArgs, percentile } from './support.js';

const SAMPLES = Number(process.argv.find((a) => a.startsWith('--samples='))?.split('=')[1] ?? 30);

async function measure(url: string, admin: (m: string, p: string, b?: unknown) => Promise<any>, mode: 'long-poll' | 'poll-1s'): Promise<number[]> {
  const client = executorClient(url, `latency-${mode}`, ACCESS_TOKEN);
  await client.heartbeat('codeintel');
  const latencies: number[] = [];
  let stop = false;
  const enqueuedAt = new Map<number, number>();
  const poller = (async () => {
    while (!stop) {
      const headers: Record<string, string> = mode === 'long-poll' ? { 'X-Sandfleet-Dequeue-Wait': '5' } : {};
      const res = await client.dequeue('codeintel', {}, headers);
      if (res.status === 200) {
        const at = enqueuedAt.get(res.body.id);
        if (at !== undefined) latencies.push(performance.now() - at);
        // Finish it, so it is not reset and handed out again while the run goes on.
        await client.jobCall('codeintel', 'markComplete', res.body, {});
      } else if (mode === 'poll-1s') {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  for (let i = 0; i < SAMPLES; i++) {
    // A random gap so enqueues land at random points of the polling cycle.
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 800));
    const before = performance.now();
    const job = await admin('POST', '/api/jobs', { queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['true'] }] });
    enqueuedAt.set(job.id, before);
    while (latencies.length <= i) await new Promise((r) => setTimeout(r, 5));
  }
  stop = true;
  await admin('POST', '/api/jobs', { queue: 'codeintel' }); // wakes a waiting long poll
  await poller;
  return latencies.sort((a, b) => a - b);
}

console.log(`pickup latency: ${SAMPLES} jobs per mode, enqueue → dequeue response`);
for (const backend of backendsFromArgs()) {
  const c = await startCoordinatorServer(backend);
  try {
    const longPoll = await measure(c.url, c.admin, 'long-poll');
    const polling = await measure(c.url, c.admin, 'poll-1s');
    const f = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(1)} ms  p99 ${percentile(xs, 99).toFixed(1)} ms`;
    console.log(`${backend.padEnd(9)} long-poll: ${f(longPoll)}   1 s polling: ${f(polling)}   p50 ratio ${(percentile(polling, 50) / percentile(longPoll, 50)).toFixed(1)}x`);
  } finally {
    await c.close();
  }
}
