/**
 * Sandfleet against graphile-worker on the same PostgreSQL in one run (the peer comparison):
 *   P1  no-op jobs/s: Sandfleet executors dequeue → markComplete (with the job token) over HTTP
 *       against a `sandfleet serve` process; graphile-worker runs the same no-op in-process. C=4, 8.
 *       Then again with the multi-job dequeue: C slots in executors of 4, each dequeue asking for
 *       as many jobs as its executor has free slots.
 *   P2  pickup latency: from the start of the enqueue request (Sandfleet: `POST /api/jobs`;
 *       graphile-worker: `addJob`) to the job being held (the dequeue answer / the task starting),
 *       idle worker, Sandfleet with long-poll. p50/p99.
 * Then the coordinator's statements per executor API request, read from its /metrics.
 *   node --import tsx bench/peer-queue.ts [--jobs=2000] [--clients=4,8] [--samples=100]
 *     [--backends=postgres,pglite] [--pglite-jobs=300] [--cpu-prof=DIR]
 * --cpu-prof=DIR writes the P1 coordinator's CPU profile there (summarise with bench/cpu-profile.ts).
 * The PostgreSQL admin URL is SANDFLEET_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test);
 * each side gets a database of its own, dropped at the end.
 */
import type pg from 'pg';
import { Logger, makeWorkerUtils, run, type WorkerUtils } from 'graphile-worker';
import { enqueueJob, openDatabase, type BackendName } from '@sandfleet/db';
import { NO_OP_SPEC } from '@sandfleet/test-helpers/db';
import { SANDFLEET_BIN, startCoordinatorProcess, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { backendsFromArgs, drainQueue, drainQueueMultiJob, machineFacts, SLOTS_PER_EXECUTOR, measurePickup, numberArg, percentile, postgresVersion, stringArg, withScratchDatabase } from './support.js';

const JOBS = numberArg('jobs', 2000);
const PGLITE_JOBS = numberArg('pglite-jobs', 300);
const CLIENTS = (stringArg('clients') ?? '4,8').split(',').map(Number);
const SAMPLES = numberArg('samples', 100);
const CPU_PROF_DIR = stringArg('cpu-prof');
const QUEUE = 'batches';
const quiet = new Logger(() => () => {});
const progress = (line: string) => console.error(`  … ${line}`);

// ---------------------------------------------------------------- graphile-worker

async function addNoOps(utils: WorkerUtils, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    await utils.addJobs(Array.from({ length: Math.min(500, count - i) }, () => ({ identifier: 'noop', payload: {} })));
  }
}

/** Jobs/s of `concurrency` in-process graphile-worker workers draining `count` queued no-ops. */
async function graphileThroughput(pgPool: pg.Pool, utils: WorkerUtils, concurrency: number, count: number): Promise<number> {
  await addNoOps(utils, count);
  let done = 0;
  let finished!: () => void;
  const allDone = new Promise<void>((resolve) => (finished = resolve));
  const started = performance.now();
  const runner = await run({
    pgPool,
    concurrency,
    noHandleSignals: true,
    logger: quiet,
    taskList: {
      noop: async () => {
        if (++done === count) finished();
      },
    },
  });
  await allDone;
  const seconds = (performance.now() - started) / 1000;
  await runner.stop();
  return count / seconds;
}

/** graphile-worker's pickup latency: `addJob` called → the task function starts, idle worker. */
async function graphilePickup(pgPool: pg.Pool, utils: WorkerUtils): Promise<number[]> {
  const startedAt = new Map<number, number>();
  const latencies: number[] = [];
  const runner = await run({
    pgPool,
    concurrency: 1,
    noHandleSignals: true,
    logger: quiet,
    taskList: {
      pickup: async (payload) => {
        const at = startedAt.get((payload as { n: number }).n);
        if (at !== undefined) latencies.push(performance.now() - at);
      },
    },
  });
  try {
    for (let n = 0; n < SAMPLES; n++) {
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
      startedAt.set(n, performance.now());
      await utils.addJob('pickup', { n });
      while (latencies.length <= n) await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await runner.stop();
  }
  return latencies.sort((a, b) => a - b);
}

async function graphileFigures() {
  return withScratchDatabase('sandfleet_bench_graphile', async (pgPool) => {
    const utils = await makeWorkerUtils({ pgPool, logger: quiet });
    try {
      await utils.migrate();
      const throughput = new Map<number, number>();
      for (const c of CLIENTS) {
        throughput.set(c, await graphileThroughput(pgPool, utils, c, JOBS));
        progress(`graphile-worker C=${c}: ${throughput.get(c)!.toFixed(0)} jobs/s`);
      }
      const pickup = await graphilePickup(pgPool, utils);
      progress(`graphile-worker pickup p50 ${percentile(pickup, 50).toFixed(1)} ms`);
      return { throughput, pickup };
    } finally {
      await utils.release();
    }
  });
}

// ---------------------------------------------------------------- Sandfleet

async function startSandfleet(backend: BackendName, profileDir?: string): Promise<CoordinatorProcess> {
  const command = profileDir ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, SANDFLEET_BIN] : [process.execPath, SANDFLEET_BIN];
  return startCoordinatorProcess(backend, {}, command);
}

const viaApi = (c: CoordinatorProcess) => async (queue: string) => {
  const answer = await c.api<{ id: number }>('POST', '/api/jobs', { queue, dockerSteps: [{ image: 'x', commands: ['true'] }] });
  if (answer.status !== 201) throw new Error(`POST /api/jobs answered ${answer.status}`);
  return answer.body.id;
};

/** Queues `count` no-ops: straight into PostgreSQL (the enqueue path is not what P1 measures), through the API on PGlite (it is the coordinator's own). */
async function fill(c: CoordinatorProcess, backend: BackendName, count: number): Promise<void> {
  if (backend === 'pglite') {
    for (let i = 0; i < count; i += 8) await Promise.all(Array.from({ length: Math.min(8, count - i) }, () => viaApi(c)(QUEUE)));
    return;
  }
  const database = await openDatabase(c.databaseConfig);
  try {
    for (let i = 0; i < count; i += 8) await Promise.all(Array.from({ length: Math.min(8, count - i) }, () => enqueueJob(database.db, { queue: QUEUE, spec: NO_OP_SPEC })));
  } finally {
    await database.close();
  }
}

interface RouteStatements {
  route: string;
  requests: number;
  statements: number;
  seconds: number;
}

/** Statements, server-side time and request counts by route, from the coordinator's /metrics. */
async function statementsPerRoute(url: string): Promise<RouteStatements[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const byRoute = new Map<string, RouteStatements>();
  const entry = (route: string) => byRoute.get(route) ?? byRoute.set(route, { route, requests: 0, statements: 0, seconds: 0 }).get(route)!;
  for (const line of text.split('\n')) {
    const statements = /^sandfleet_executor_api_db_statements_total\{route="([^"]+)",method="\w+"\} (\S+)$/.exec(line);
    if (statements) entry(statements[1]!).statements += Number(statements[2]);
    const count = /^sandfleet_executor_api_request_duration_seconds_count\{route="([^"]+)",method="\w+",code="\d+"\} (\S+)$/.exec(line);
    if (count) entry(count[1]!).requests += Number(count[2]);
    const sum = /^sandfleet_executor_api_request_duration_seconds_sum\{route="([^"]+)",method="\w+",code="\d+"\} (\S+)$/.exec(line);
    if (sum) entry(sum[1]!).seconds += Number(sum[2]);
  }
  return [...byRoute.values()].filter((r) => r.requests > 0);
}

async function sandfleetThroughput(backend: BackendName) {
  const jobs = backend === 'pglite' ? PGLITE_JOBS : JOBS;
  const c = await startSandfleet(backend, backend === 'postgres' ? CPU_PROF_DIR : undefined);
  try {
    const throughput = new Map<number, number>();
    const multiJob = new Map<number, number>();
    for (const clients of CLIENTS) {
      await fill(c, backend, jobs);
      throughput.set(clients, await drainQueue(c.url, QUEUE, clients, jobs));
      progress(`sandfleet ${backend} C=${clients}: ${throughput.get(clients)!.toFixed(0)} jobs/s`);
    }
    // Statements per request are read before the multi-job run, so they stay per single dequeue.
    const statements = await statementsPerRoute(c.url);
    for (const clients of CLIENTS) {
      await fill(c, backend, jobs);
      multiJob.set(clients, await drainQueueMultiJob(c.url, QUEUE, clients, jobs));
      progress(`sandfleet ${backend} C=${clients} multi-job dequeue: ${multiJob.get(clients)!.toFixed(0)} jobs/s`);
    }
    return { jobs, throughput, multiJob, statements };
  } finally {
    await c.stop();
  }
}

async function sandfleetPickup(): Promise<{ pickup: number[]; enqueue: number[] }> {
  const c = await startSandfleet('postgres');
  try {
    return await measurePickup(c.url, viaApi(c), { mode: 'long-poll', samples: SAMPLES, queue: 'codeintel', gapMs: [50, 200] });
  } finally {
    await c.stop();
  }
}

// ---------------------------------------------------------------- report

console.log(`peer queue: ${machineFacts()}, PostgreSQL ${await postgresVersion()}`);
console.log(`P1: ${JOBS} no-op jobs (PGlite ${PGLITE_JOBS}), C=${CLIENTS.join(',')}; P2: ${SAMPLES} samples, idle worker`);

const graphile = await graphileFigures();
const sandfleet = new Map<BackendName, Awaited<ReturnType<typeof sandfleetThroughput>>>();
for (const backend of backendsFromArgs()) sandfleet.set(backend, await sandfleetThroughput(backend));
const { pickup, enqueue } = await sandfleetPickup();

console.log('\nP1 no-op jobs/s');
for (const clients of CLIENTS) {
  const peer = graphile.throughput.get(clients)!;
  const parts = [`C=${clients}  graphile-worker (in-process) ${peer.toFixed(0).padStart(5)}`];
  for (const [backend, figures] of sandfleet) {
    const own = figures.throughput.get(clients)!;
    parts.push(`sandfleet ${backend} (HTTP) ${own.toFixed(0).padStart(5)}` + (backend === 'postgres' ? ` = ${(own / peer).toFixed(2)}× graphile-worker` : ''));
  }
  console.log(parts.join('   '));
  const multi = [`C=${clients}  with multi-job dequeue (${SLOTS_PER_EXECUTOR} slots per executor):`];
  for (const [backend, figures] of sandfleet) {
    const own = figures.multiJob.get(clients)!;
    multi.push(`sandfleet ${backend} (HTTP) ${own.toFixed(0).padStart(5)}` + (backend === 'postgres' ? ` = ${(own / peer).toFixed(2)}× graphile-worker` : ''));
  }
  console.log(multi.join('   '));
}
const f = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(1)} ms  p99 ${percentile(xs, 99).toFixed(1)} ms`;
console.log('\nP2 pickup, from the start of the enqueue request');
console.log(`graphile-worker: ${f(graphile.pickup)}`);
console.log(`sandfleet postgres long-poll: ${f(pickup)}   = ${(percentile(pickup, 50) / percentile(graphile.pickup, 50)).toFixed(1)}× (p50), ${(percentile(pickup, 99) / percentile(graphile.pickup, 99)).toFixed(1)}× (p99) graphile-worker`);
console.log(`  of which the POST /api/jobs answer: ${f(enqueue)}`);
for (const [backend, figures] of sandfleet) {
  console.log(`\nexecutor API during P1 (${backend}): statements per request, mean time in the coordinator`);
  for (const r of figures.statements) {
    console.log(`  ${r.route.padEnd(46)} ${(r.statements / r.requests).toFixed(2)} statements  ${((1000 * r.seconds) / r.requests).toFixed(2)} ms  (${r.requests} requests)`);
  }
}
