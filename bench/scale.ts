/**
 * Scale (targets P7, P8), each against a baseline in the same run:
 *   P7  dequeue latency with 1M queued jobs vs 1k, PostgreSQL: through the HTTP API (single-queue
 *       and multi-queue routes) and the claim statement alone, p50/p99 and the ratio.
 *   P8  1000 simulated executors (bench/scale-fleet.ts, a process of its own) heartbeating every 5 s
 *       and long-polling, with a trickle of jobs, against 10 as the baseline: the coordinator's CPU
 *       (from /proc/<pid>/stat over the window) and executor API latency, client-side and from the
 *       coordinator's sandfleet_executor_api_request_duration_seconds.
 *   node --import tsx bench/scale.ts [--only=p7|p8] [--rows=1000000] [--base-rows=1000] [--samples=200]
 *     [--executors=1000] [--baseline-executors=10] [--warmup=10] [--seconds=30] [--jobs-per-second=10]
 * Each part runs a `sandfleet serve` child on a database of its own (dropped at the end); the
 * PostgreSQL admin URL is SANDFLEET_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { dequeueJob, enqueueJob, markComplete, openDatabase, type Database } from '@sandfleet/db';
import { NO_OP_SPEC } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, startCoordinatorProcess, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { executorClient } from '@sandfleet/test-helpers';
import { machineFacts, numberArg, percentile, postgresVersion, stringArg } from './support.js';

const ONLY = stringArg('only');
const ROWS = numberArg('rows', 1_000_000);
const BASE_ROWS = numberArg('base-rows', 1000);
const SAMPLES = numberArg('samples', 200);
const EXECUTORS = numberArg('executors', 1000);
const BASELINE_EXECUTORS = numberArg('baseline-executors', 10);
const WARMUP_S = numberArg('warmup', 10);
const WINDOW_S = numberArg('seconds', 30);
const JOBS_PER_SECOND = numberArg('jobs-per-second', 10);
const QUEUE = 'batches';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const progress = (line: string) => console.error(`  … ${line}`);
const ms = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(2)} ms  p99 ${percentile(xs, 99).toFixed(2)} ms  (n=${xs.length})`;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

function postgresUrl(c: CoordinatorProcess): string {
  if (c.databaseConfig.kind !== 'postgres') throw new Error('the scale bench runs on PostgreSQL');
  return c.databaseConfig.url;
}

// ---------------------------------------------------------------- P7

/** Queued no-op jobs straight in SQL: one INSERT … SELECT over generate_series. */
async function insertQueued(client: pg.Client, count: number): Promise<void> {
  if (count <= 0) return;
  await client.query(`INSERT INTO jobs (queue, payload) SELECT $1, $2::jsonb FROM generate_series(1, $3::integer)`, [QUEUE, JSON.stringify(NO_OP_SPEC), count]);
  // The state autovacuum reaches soon after a bulk insert, so it does not run during the samples;
  // and a checkpoint now rather than in the middle of them. The same for both depths.
  await client.query('VACUUM ANALYZE jobs');
  await client.query('CHECKPOINT').catch(() => progress('CHECKPOINT refused (not a superuser): samples may meet one'));
}

interface DequeueFigures {
  single: number[];
  multi: number[];
  statement: number[];
}

/** SAMPLES dequeues each way (each job then marked complete, untimed), alternating the ways. */
async function measureDequeues(c: CoordinatorProcess, database: Database): Promise<DequeueFigures> {
  const client = executorClient(c.url, 'scale-p7', ACCESS_TOKEN);
  await client.heartbeat(QUEUE);
  const figures: DequeueFigures = { single: [], multi: [], statement: [] };
  for (let i = 0; i < SAMPLES; i++) {
    let started = performance.now();
    const single = await client.dequeue(QUEUE);
    figures.single.push(performance.now() - started);
    if (single.status !== 200) throw new Error(`dequeue answered ${single.status}: ${single.text}`);
    await client.jobCall(QUEUE, 'markComplete', single.body, {});

    started = performance.now();
    const multi = await client.post('/.executors/queue/dequeue', { executorName: 'scale-p7', version: '5.3.0', queues: [QUEUE, 'codeintel'] });
    figures.multi.push(performance.now() - started);
    if (multi.status !== 200) throw new Error(`multi-queue dequeue answered ${multi.status}: ${multi.text}`);
    await client.jobCall(QUEUE, 'markComplete', multi.body, {});

    started = performance.now();
    const claimed = await dequeueJob(database.db, { queue: QUEUE, executorName: 'scale-p7-direct' });
    figures.statement.push(performance.now() - started);
    if (!claimed) throw new Error('the claim statement found no job');
    await markComplete(database.db, { jobId: claimed.job.id, queue: QUEUE, executorName: 'scale-p7-direct', attempt: claimed.job.attempt });
  }
  return { single: sorted(figures.single), multi: sorted(figures.multi), statement: sorted(figures.statement) };
}

async function explainClaim(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(`
    EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)
    SELECT id FROM jobs
    WHERE queue = $1 AND state IN ('queued', 'errored')
      AND ((state = 'queued' AND (process_after IS NULL OR process_after <= now())) OR (false AND state = 'errored'))
    ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED`, [QUEUE]);
  return rows.map((r) => `    ${r['QUERY PLAN']}`).join('\n');
}

async function p7(): Promise<void> {
  console.log(`\nP7 dequeue latency, ${BASE_ROWS} vs ${ROWS} queued jobs in one queue (PostgreSQL), ${SAMPLES} samples each way`);
  const c = await startCoordinatorProcess('postgres');
  const client = new pg.Client({ connectionString: postgresUrl(c) });
  await client.connect();
  const database = await openDatabase(c.databaseConfig);
  try {
    // Every sample takes three jobs: keep at least the stated depth throughout.
    await insertQueued(client, BASE_ROWS + 3 * SAMPLES);
    const base = await measureDequeues(c, database);
    progress(`p7 ${BASE_ROWS}: single ${percentile(base.single, 50).toFixed(2)} ms`);
    let started = performance.now();
    await insertQueued(client, ROWS - BASE_ROWS);
    const insertSeconds = (performance.now() - started) / 1000;
    progress(`inserted ${ROWS - BASE_ROWS} rows, vacuumed and analyzed in ${insertSeconds.toFixed(1)} s`);
    started = performance.now();
    const large = await measureDequeues(c, database);
    const plan = await explainClaim(client);
    const ratio = (a: number[], b: number[], p: number) => (percentile(b, p) / percentile(a, p)).toFixed(2);
    for (const [name, key] of [
      ['HTTP POST /.executors/queue/batches/dequeue', 'single'],
      ['HTTP POST /.executors/queue/dequeue (batches, codeintel)', 'multi'],
      ['claim statement alone (dequeueJob)', 'statement'],
    ] as const) {
      console.log(`${name}`);
      console.log(`  ${String(BASE_ROWS).padStart(8)} queued: ${ms(base[key])}`);
      console.log(`  ${String(ROWS).padStart(8)} queued: ${ms(large[key])}   = ${ratio(base[key], large[key], 50)}× (p50), ${ratio(base[key], large[key], 99)}× (p99)`);
    }
    console.log(`  (${ROWS - BASE_ROWS} rows inserted with generate_series + VACUUM ANALYZE + CHECKPOINT in ${insertSeconds.toFixed(1)} s)`);
    console.log(`  the claim's candidate scan at ${ROWS} queued:\n${plan}`);
  } finally {
    await database.close();
    await client.end();
    await c.stop();
  }
}

// ---------------------------------------------------------------- P8

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Seconds a process spent waiting for a CPU while runnable (/proc/<pid>/schedstat, field 2, ns). */
function runQueueSeconds(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
}

/** The PostgreSQL backends serving a database (the coordinator's pool), by pid. */
async function backendPids(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    return rows.map((r) => r.pid);
  } finally {
    await client.end();
  }
}

function totalCpuSeconds(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += cpuSeconds(pid);
    } catch {
      // a backend that ended
    }
  }
  return sum;
}

type Buckets = Map<string, Map<number, number>>;

/** Cumulative bucket counts of the executor API histogram by route, summed over methods and codes. */
async function apiBuckets(url: string): Promise<Buckets> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const byRoute: Buckets = new Map();
  for (const line of text.split('\n')) {
    const m = /^sandfleet_executor_api_request_duration_seconds_bucket\{le="([^"]+)",route="([^"]+)",method="\w+",code="(\d+)"\} (\S+)$/.exec(line);
    if (!m) continue;
    const route = `${m[2]} ${m[3]}`;
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    const buckets = byRoute.get(route) ?? byRoute.set(route, new Map()).get(route)!;
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[4]));
  }
  return byRoute;
}

/** The smallest bucket bound holding 99 % of the window's requests, and their number. */
function windowP99(before: Buckets, after: Buckets, route: string): { p99: number; count: number } | undefined {
  const end = after.get(route);
  if (!end) return undefined;
  const start = before.get(route) ?? new Map<number, number>();
  const bounds = [...end.keys()].sort((a, b) => a - b);
  const total = end.get(Infinity)! - (start.get(Infinity) ?? 0);
  if (total <= 0) return undefined;
  for (const le of bounds) if (end.get(le)! - (start.get(le) ?? 0) >= 0.99 * total) return { p99: le, count: total };
  return undefined;
}

interface FleetResult {
  executors: number;
  cpuCores: number;
  /** Seconds per second the coordinator was runnable but waited for a CPU (the machine's load). */
  runQueueWait: number;
  postgresCores: number;
  fleetCores: number;
  client: Record<'heartbeat' | 'markComplete' | 'dequeueEmpty' | 'dequeueJob', number[]>;
  pickup: number[];
  server: Record<string, { p99: number; count: number } | undefined>;
  jobs: number;
  errorCount: number;
  errors: string[];
}

async function runFleet(executors: number): Promise<FleetResult> {
  const c = await startCoordinatorProcess('postgres');
  const database = await openDatabase(c.databaseConfig);
  const fleet = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'scale-fleet.ts'), `--url=${c.url}`, `--executors=${executors}`, `--warmup=${WARMUP_S}`, `--seconds=${WINDOW_S}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const lines: string[] = [];
  let onLine: (() => void) | undefined;
  fleet.stdout!.setEncoding('utf8');
  fleet.stdout!.on('data', (chunk: string) => {
    out += chunk;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      lines.push(out.slice(0, nl));
      out = out.slice(nl + 1);
      onLine?.();
    }
  });
  const exited = new Promise<number | null>((resolve) => fleet.once('exit', resolve));
  const waitLine = (match: (l: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found !== undefined) {
          onLine = undefined;
          resolve(found);
        }
      };
      onLine = check;
      check();
      void exited.then((code) => reject(new Error(`the fleet exited with ${code}`)));
    });
  const enqueuedAt = new Map<number, number>();
  let enqueuing = true;
  const enqueuer = (async () => {
    while (enqueuing) {
      const at = Date.now();
      const job = await enqueueJob(database.db, { queue: QUEUE, spec: NO_OP_SPEC });
      enqueuedAt.set(job.id, at);
      await new Promise((r) => setTimeout(r, 1000 / JOBS_PER_SECOND));
    }
  })();
  const pid = c.child.pid!;
  try {
    await waitLine((l) => l === 'window start');
    const backends = await backendPids(postgresUrl(c));
    const cpuBefore = cpuSeconds(pid);
    const waitBefore = runQueueSeconds(pid);
    const pgBefore = totalCpuSeconds(backends);
    const fleetBefore = cpuSeconds(fleet.pid!);
    const wallBefore = performance.now();
    const bucketsBefore = await apiBuckets(c.url);
    await waitLine((l) => l === 'window end');
    const wall = (performance.now() - wallBefore) / 1000;
    const cpuCores = (cpuSeconds(pid) - cpuBefore) / wall;
    const runQueueWait = (runQueueSeconds(pid) - waitBefore) / wall;
    const postgresCores = (totalCpuSeconds(backends) - pgBefore) / wall;
    const fleetCores = (cpuSeconds(fleet.pid!) - fleetBefore) / wall;
    const bucketsAfter = await apiBuckets(c.url);
    enqueuing = false;
    await enqueuer;
    const result = JSON.parse(await waitLine((l) => l.startsWith('{'))) as { latencies: FleetResult['client']; received: { id: number; at: number }[]; errors: string[]; errorCount: number };
    const pickup = sorted(result.received.flatMap((r) => (enqueuedAt.has(r.id) ? [r.at - enqueuedAt.get(r.id)!] : [])));
    const server: FleetResult['server'] = {};
    for (const route of ['/.executors/queue/:queueName/heartbeat 200', '/.executors/queue/:queueName/markComplete 204', '/.executors/queue/:queueName/dequeue 200']) {
      server[route] = windowP99(bucketsBefore, bucketsAfter, route);
    }
    const client = Object.fromEntries(Object.entries(result.latencies).map(([k, v]) => [k, sorted(v)])) as FleetResult['client'];
    return { executors, cpuCores, runQueueWait, postgresCores, fleetCores, client, pickup, server, jobs: result.received.length, errorCount: result.errorCount, errors: result.errors };
  } finally {
    enqueuing = false;
    await enqueuer.catch(() => {});
    if (fleet.exitCode === null) fleet.kill('SIGKILL');
    await exited;
    await database.close();
    await c.stop();
  }
}

async function p8(): Promise<void> {
  console.log(`\nP8 simulated executors heartbeating every 5 s and long-polling (30 s waits), ${JOBS_PER_SECOND} jobs/s enqueued; ${WARMUP_S} s warm-up, ${WINDOW_S} s window`);
  const results: FleetResult[] = [];
  for (const n of [BASELINE_EXECUTORS, EXECUTORS]) {
    results.push(await runFleet(n));
    progress(`p8 ${n} executors: ${results.at(-1)!.cpuCores.toFixed(2)} cores`);
  }
  const [base, full] = results as [FleetResult, FleetResult];
  for (const r of results) {
    console.log(`${r.executors} executors: coordinator CPU ${r.cpuCores.toFixed(2)} cores` + (r === full ? ` = ${(full.cpuCores / base.cpuCores).toFixed(1)}× the ${base.executors}-executor baseline` : ''));
    console.log(`  coordinator runnable but waiting for a CPU ${r.runQueueWait.toFixed(2)} s/s; its PostgreSQL backends ${r.postgresCores.toFixed(2)} cores; the simulator ${r.fleetCores.toFixed(2)} cores`);
    console.log(`  client heartbeat      ${ms(r.client.heartbeat)}`);
    console.log(`  client markComplete   ${ms(r.client.markComplete)}`);
    console.log(`  client dequeue → job  ${ms(r.client.dequeueJob)}  (includes the long-poll wait)`);
    console.log(`  pickup (enqueue statement started → executor holds the job) ${ms(r.pickup)}`);
    for (const [route, figure] of Object.entries(r.server)) {
      console.log(`  coordinator ${route.padEnd(48)} p99 ≤ ${figure ? `${(figure.p99 * 1000).toFixed(1)} ms (n=${figure.count})` : 'n/a'}`);
    }
    console.log(`  jobs taken ${r.jobs}, request errors ${r.errorCount}${r.errors.length ? `: ${r.errors.slice(0, 3).join(' | ')}` : ''}`);
  }
}

// ---------------------------------------------------------------- report

const pgVersion = await postgresVersion();
console.log(`scale: ${machineFacts()}, PostgreSQL ${pgVersion}`);
if (ONLY !== 'p8') await p7();
if (ONLY !== 'p7') await p8();
