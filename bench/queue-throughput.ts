/**
 * No-op jobs per second through the full executor protocol over HTTP (dequeue → markComplete), with
 * 1 client (the baseline) and N concurrent clients, on each backend, in one run.
 *   node --import tsx bench/queue-throughput.ts [--jobs=300] [--clients=5] [--backends=postgres,pglite]
 */
import { startCoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { backendsFromArgs, drainQueue, numberArg } from './support.js';

const JOBS = numberArg('jobs', 300);
const CLIENTS = numberArg('clients', 5);

async function run(backend: 'postgres' | 'pglite', clients: number): Promise<number> {
  const c = await startCoordinatorServer(backend);
  try {
    for (let i = 0; i < JOBS; i++) await c.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['true'] }] });
    return await drainQueue(c.url, 'batches', clients, JOBS);
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
