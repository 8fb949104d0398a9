/**
 * No-op jobs per second through the full executor protocol over HTTP (dequeue → markComplete), with
 * 1 client (the baseline) and N concurrent clients, on each backend, in one run.
 *   node --import tsx bench/queue-throughput.ts [--jobs=300] [--clients=5] [--backends=postgres,pglite]
 */
import { executorClient } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { backendsFromArgs } from './support.js';

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const JOBS = arg('jobs', 300);
const CLIENTS = arg('clients', 5);

async function run(backend: 'postgres' | 'pglite', clients: number): Promise<number> {
  const c = await startCoordinatorServer(backend);
  try {
    for (let i = 0; i < JOBS; i++) await c.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['true'] }] });
    const started = performance.now();
    let done = 0;
    await Promise.all(
      Array.from({ length: clients }, async (_, n) => {
        const client = executorClient(c.url, `bench-${n}`, ACCESS_TOKEN);
        await client.heartbeat('batches');
        for (;;) {
          const job = await client.dequeue('batches');
          if (job.status === 204) return;
          const mark = await client.jobCall('batches', 'markComplete', job.body, {});
          if (mark.status !== 204) throw new Error(`markComplete answered ${mark.status}`);
          done++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    if (done !== JOBS) throw new Error(`completed ${done} of ${JOBS}`);
    return JOBS / seconds;
  } finally {
    await c.close();
  }
}

console.log(`queue throughput: ${JOBS} no-op jobs, dequeue → markComplete over HTTP on 127.0.0.1`);
for (const backend of backendsFromArgs()) {
  const baseline = await run(backend, 1);
  const concurrent = await run(backend, CLIENTS);
  console.log(`${backend.padEnd(9)} 1 client: ${baseline.toFixed(1)} jobs/s   ${CLIENTS} clients: ${concurrent.toFixed(1)} jobs/s   ratio ${(concurrent / baseline).toFixed(2)}x`);
}
