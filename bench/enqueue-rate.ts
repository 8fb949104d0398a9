/**
 * P3, the enqueue rate through the user API, against graphile-worker on the same PostgreSQL in one run:
 *   one job per request: C clients each `POST /api/jobs` one no-op job at a time (keep-alive),
 *     against a `sandfleet serve` child process; baseline: C callers of graphile-worker's `addJob`
 *     in-process (one job per call, each its own statement).
 *   batch: `POST /api/jobs/batch` with B jobs per request, `--batch-clients` requests at a time;
 *     baseline: graphile-worker's `addJobs` with B jobs per call, as many callers.
 *   node --import tsx bench/enqueue-rate.ts [--jobs=2000] [--clients=16] [--batch-jobs=20000]
 *     [--batch-size=1000] [--batch-clients=2] [--cpu-prof=DIR]
 * For where the time goes, the same run also measures one job per request with the admin-token
 * cache off (SANDFLEET_ADMIN_TOKEN_CACHE=0: a token lookup per request, as before the cache), and
 * enqueueJob called directly on the coordinator's database by C callers (no HTTP: the database's
 * share). Every job is checked to be in the database afterwards. --cpu-prof=DIR writes the coordinator's CPU
 * profile there (summarise with bench/cpu-profile.ts). The PostgreSQL admin URL is
 * SANDFLEET_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test); each side gets a database
 * of its own, dropped at the end.
 */
import { Logger, makeWorkerUtils, type WorkerUtils } from 'graphile-worker';
import { enqueueJob, openDatabase } from '@sandfleet/db';
import { NO_OP_SPEC } from '@sandfleet/test-helpers/db';
import { ADMIN_TOKEN, SANDFLEET_BIN, startCoordinatorProcess, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { machineFacts, numberArg, percentile, postgresVersion, stringArg, withScratchDatabase } from './support.js';

const JOBS = numberArg('jobs', 2000);
const CLIENTS = numberArg('clients', 16);
const BATCH_JOBS = numberArg('batch-jobs', 20_000);
const BATCH_SIZE = numberArg('batch-size', 1000);
const BATCH_CLIENTS = numberArg('batch-clients', 2);
const CPU_PROF_DIR = stringArg('cpu-prof');
const QUEUE = 'batches';
/** The no-op job both sides enqueue: what `POST /api/jobs` takes, and graphile-worker's payload. */
const NO_OP = { queue: QUEUE, dockerSteps: [{ image: 'x', commands: ['true'] }] };
const quiet = new Logger(() => () => {});
const progress = (line: string) => console.error(`  … ${line}`);

interface Rate {
  jobsPerSecond: number;
  /** Milliseconds per call (request or addJob/addJobs), sorted. */
  latencies: number[];
}

/**
 * Runs `callers` loops that each take the next `size` jobs of `total` and hand them to `submit`
 * until all are taken; resolves with jobs/s and each call's duration.
 */
async function measure(total: number, size: number, callers: number, submit: (count: number) => Promise<void>): Promise<Rate> {
  let taken = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (taken < total) {
        const count = Math.min(size, total - taken);
        taken += count;
        const before = performance.now();
        await submit(count);
        latencies.push(performance.now() - before);
      }
    }),
  );
  return { jobsPerSecond: total / ((performance.now() - started) / 1000), latencies: latencies.sort((a, b) => a - b) };
}

// ---------------------------------------------------------------- graphile-worker

async function graphileFigures(): Promise<{ single: Rate; batch: Rate }> {
  return withScratchDatabase('sandfleet_bench_graphile_enqueue', async (pgPool) => {
    const utils: WorkerUtils = await makeWorkerUtils({ pgPool, logger: quiet });
    try {
      await utils.migrate();
      const single = await measure(JOBS, 1, CLIENTS, async () => {
        await utils.addJob('noop', NO_OP);
      });
      progress(`graphile-worker addJob, ${CLIENTS} callers: ${single.jobsPerSecond.toFixed(0)} jobs/s`);
      const batch = await measure(BATCH_JOBS, BATCH_SIZE, BATCH_CLIENTS, async (count) => {
        await utils.addJobs(Array.from({ length: count }, () => ({ identifier: 'noop', payload: NO_OP })));
      });
      progress(`graphile-worker addJobs ×${BATCH_SIZE}: ${batch.jobsPerSecond.toFixed(0)} jobs/s`);
      const { rows } = await pgPool.query<{ n: number }>('SELECT count(*)::int AS n FROM graphile_worker.jobs');
      if (rows[0]!.n !== JOBS + BATCH_JOBS) throw new Error(`graphile-worker holds ${rows[0]!.n} jobs, expected ${JOBS + BATCH_JOBS}`);
      return { single, batch };
    } finally {
      await utils.release();
    }
  });
}

// ---------------------------------------------------------------- Sandfleet

async function post(c: CoordinatorProcess, path: string, body: unknown, expectedIds: number): Promise<void> {
  const res = await fetch(c.url + path, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST ${path} answered ${res.status}: ${text}`);
  const answer = JSON.parse(text) as { id?: number; ids?: number[] };
  const ids = answer.ids ?? (answer.id !== undefined ? [answer.id] : []);
  if (ids.length !== expectedIds) throw new Error(`POST ${path} answered ${ids.length} ids, expected ${expectedIds}`);
}

async function queuedJobs(c: CoordinatorProcess): Promise<number> {
  const answer = await c.api<{ queues: { name: string; counts: Record<string, number> }[] }>('GET', '/api/queues');
  return answer.body.queues.find((q) => q.name === QUEUE)?.counts.queued ?? 0;
}

interface SandfleetFigures {
  single: Rate;
  batch: Rate;
  /** One job per request with SANDFLEET_ADMIN_TOKEN_CACHE=0. */
  singleUncached: Rate;
  /** enqueueJob called directly, C callers, no HTTP. */
  direct: Rate;
}

function startSandfleet(env: Record<string, string> = {}): Promise<CoordinatorProcess> {
  const command = CPU_PROF_DIR ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, SANDFLEET_BIN] : [process.execPath, SANDFLEET_BIN];
  return startCoordinatorProcess('postgres', env, command);
}

async function sandfleetFigures(): Promise<SandfleetFigures> {
  const uncached = await startSandfleet({ SANDFLEET_ADMIN_TOKEN_CACHE: '0' });
  let singleUncached: Rate;
  try {
    await post(uncached, '/api/jobs', NO_OP, 1);
    singleUncached = await measure(JOBS, 1, CLIENTS, () => post(uncached, '/api/jobs', NO_OP, 1));
    progress(`sandfleet POST /api/jobs, admin-token cache off: ${singleUncached.jobsPerSecond.toFixed(0)} jobs/s`);
  } finally {
    await uncached.stop();
  }
  const c = await startSandfleet();
  try {
    // Warm up the connections and the code paths (not counted).
    await post(c, '/api/jobs', NO_OP, 1);
    await post(c, '/api/jobs/batch', [NO_OP], 1);
    const single = await measure(JOBS, 1, CLIENTS, () => post(c, '/api/jobs', NO_OP, 1));
    progress(`sandfleet POST /api/jobs, ${CLIENTS} clients: ${single.jobsPerSecond.toFixed(0)} jobs/s`);
    const batch = await measure(BATCH_JOBS, BATCH_SIZE, BATCH_CLIENTS, (count) => post(c, '/api/jobs/batch', Array.from({ length: count }, () => NO_OP), count));
    progress(`sandfleet POST /api/jobs/batch ×${BATCH_SIZE}: ${batch.jobsPerSecond.toFixed(0)} jobs/s`);
    const database = await openDatabase({ ...c.databaseConfig, ...(c.databaseConfig.kind === 'postgres' ? { maxConnections: CLIENTS } : {}) });
    let direct: Rate;
    try {
      direct = await measure(JOBS, 1, CLIENTS, async () => {
        await enqueueJob(database.db, { queue: QUEUE, spec: NO_OP_SPEC });
      });
    } finally {
      await database.close();
    }
    progress(`sandfleet enqueueJob directly, ${CLIENTS} callers: ${direct.jobsPerSecond.toFixed(0)} jobs/s`);
    const queued = await queuedJobs(c);
    const expected = 2 * JOBS + BATCH_JOBS + 2;
    if (queued !== expected) throw new Error(`the coordinator holds ${queued} queued jobs, expected ${expected}`);
    return { single, batch, singleUncached, direct };
  } finally {
    await c.stop();
  }
}

// ---------------------------------------------------------------- report

console.log(`enqueue rate: ${machineFacts()}, PostgreSQL ${await postgresVersion()}`);
console.log(`one job per request: ${JOBS} jobs, ${CLIENTS} clients; batch: ${BATCH_JOBS} jobs, ${BATCH_SIZE} per request, ${BATCH_CLIENTS} at a time`);
const graphile = await graphileFigures();
const sandfleet = await sandfleetFigures();

const calls = (r: Rate) => `p50 ${percentile(r.latencies, 50).toFixed(1)} ms  p99 ${percentile(r.latencies, 99).toFixed(1)} ms per call`;
const line = (label: string, own: Rate, peer: Rate, peerLabel: string, target: number) => {
  console.log(`${label}`);
  console.log(`  graphile-worker ${peerLabel} (in-process): ${peer.jobsPerSecond.toFixed(0).padStart(6)} jobs/s  ${calls(peer)}`);
  console.log(`  sandfleet (HTTP, sandfleet serve):  ${own.jobsPerSecond.toFixed(0).padStart(6)} jobs/s  ${calls(own)}`);
  const met = own.jobsPerSecond >= target ? 'met' : 'not met';
  console.log(`  = ${(own.jobsPerSecond / peer.jobsPerSecond).toFixed(2)}× graphile-worker; target ≥ ${target} jobs/s: ${met}`);
};
console.log('');
line(`P3 one job per request, C=${CLIENTS}`, sandfleet.single, graphile.single, 'addJob', 300);
line(`P3 batch, ${BATCH_SIZE} jobs per request, ${BATCH_CLIENTS} at a time`, sandfleet.batch, graphile.batch, `addJobs ×${BATCH_SIZE}`, 1000);
console.log(`\nwhere the time of one job per request goes (C=${CLIENTS})`);
const ofCached = (r: Rate) => `${r.jobsPerSecond.toFixed(0).padStart(6)} jobs/s  ${calls(r)}  = ${(r.jobsPerSecond / sandfleet.single.jobsPerSecond).toFixed(2)}× with the cache`;
console.log(`  admin-token cache off (a lookup per request):   ${ofCached(sandfleet.singleUncached)}`);
console.log(`  enqueueJob directly, no HTTP (the database):    ${ofCached(sandfleet.direct)}`);
console.log(`  batch vs one job per request: ${(sandfleet.batch.jobsPerSecond / sandfleet.single.jobsPerSecond).toFixed(1)}×`);
