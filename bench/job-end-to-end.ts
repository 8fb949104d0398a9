/**
 * Full jobs through a real coordinator and real executor processes, two parts:
 *
 *   P4  no-op jobs/s, shell runtime, 4 executors × 4 slots (EXECUTOR_MAXIMUM_NUM_JOBS=4), on
 *       PostgreSQL (target ≥ 200 jobs/s) and PGlite (figure). Baseline in the same run, against the
 *       same `sandfleet serve` process: the coordinator-only loop, 16 clients each dequeue →
 *       markComplete over HTTP (what the executors' HTTP traffic would cost if running a job took
 *       no time). The executors first fill their 16 slots with gate jobs that wait for a file; the
 *       no-op jobs are queued behind them, then the gate opens and the clock starts, so executor
 *       start-up and enqueueing are not timed.
 *   latency  one one-step job at a time, enqueue → completed, per runtime, with `shell` (no
 *       sandbox) as the baseline in the same run. The step is `true` in the demo image the
 *       coordinator serves (pulled once, then cached).
 *
 *   node --import tsx bench/job-end-to-end.ts [--parts=p4,latency] [--p4-jobs=400] [--pglite-jobs=200]
 *     [--backends=postgres,pglite] [--jobs=7] [--runtimes=shell,bwrap,oci,gvisor] [--cpu-prof=DIR]
 * --cpu-prof=DIR writes each P4 executor's CPU profile there (summarise with bench/cpu-profile.ts).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { enqueueJob, openDatabase, type JobSpec } from '@sandfleet/db';
import { startExecutorProcess, type ExecutorProcess } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorProcess, startCoordinatorServer, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { backendsFromArgs, drainQueue, machineFacts, numberArg, percentile, stringArg } from './support.js';

const PARTS = (stringArg('parts') ?? 'p4,latency').split(',');
const JOBS = numberArg('jobs', 7);
const RUNTIMES = (stringArg('runtimes') ?? 'shell,bwrap,oci,gvisor').split(',');
const P4_JOBS = numberArg('p4-jobs', 400);
const PGLITE_JOBS = numberArg('pglite-jobs', 200);
const CPU_PROF_DIR = stringArg('cpu-prof');
const EXECUTORS = 4;
const SLOTS = 4;
const QUEUE = 'batches';

// ---------------------------------------------------------------- P4

function shellJob(command: string): JobSpec {
  return {
    repositoryName: '', repositoryDirectory: '', commit: '', fetchTags: false, shallowClone: false, sparseCheckout: null, files: {},
    dockerSteps: [{ image: 'none', commands: [command], dir: '', env: [] }], cliSteps: null, redactedValues: null, dockerAuthConfig: null,
  } as JobSpec;
}

async function queueCounts(c: CoordinatorProcess): Promise<Record<string, number>> {
  const answer = await c.api('GET', '/api/queues');
  return answer.body.queues.find((q: { name: string }) => q.name === QUEUE).counts;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Puts `count` jobs on the queue: straight into PostgreSQL, through the API for PGlite (in-process there). */
async function enqueueMany(c: CoordinatorProcess, backend: string, spec: JobSpec, count: number): Promise<void> {
  if (backend === 'postgres') {
    const database = await openDatabase(c.databaseConfig);
    try {
      for (let i = 0; i < count; i += 8) await Promise.all(Array.from({ length: Math.min(8, count - i) }, () => enqueueJob(database.db, { queue: QUEUE, spec })));
    } finally {
      await database.close();
    }
    return;
  }
  for (let i = 0; i < count; i += 8) {
    await Promise.all(Array.from({ length: Math.min(8, count - i) }, async () => {
      const r = await c.api('POST', '/api/jobs', { queue: QUEUE, dockerSteps: spec.dockerSteps });
      if (r.status !== 201) throw new Error(`enqueue answered ${r.status}`);
    }));
  }
}

async function p4(backend: 'postgres' | 'pglite', jobs: number): Promise<{ baseline: number; full: number }> {
  const c = await startCoordinatorProcess(backend);
  const gateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-bench-gate-'));
  const executors: ExecutorProcess[] = [];
  try {
    await enqueueMany(c, backend, shellJob('true'), jobs);
    const baseline = await drainQueue(c.url, QUEUE, EXECUTORS * SLOTS, jobs);
    const before = (await queueCounts(c)).completed ?? 0;
    // The gate jobs hold every slot until the file exists (the shell runtime runs steps on the host).
    const gate = path.join(gateDir, 'open');
    await enqueueMany(c, backend, shellJob(`while [ ! -e ${gate} ]; do sleep 0.02; done`), EXECUTORS * SLOTS);
    for (let n = 0; n < EXECUTORS; n++) {
      executors.push(startExecutorProcess(c.url, ACCESS_TOKEN, {
        EXECUTOR_RUNTIME: 'shell',
        EXECUTOR_MAXIMUM_NUM_JOBS: String(SLOTS),
        EXECUTOR_NAME: `bench-p4-${n}`,
        SRC_LOG_LEVEL: 'warn',
      }, CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`] : []));
    }
    await waitFor('the executors to fill their slots with gate jobs', 60_000, async () => (await queueCounts(c)).processing === EXECUTORS * SLOTS)
      .catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(await queueCounts(c))}\n${executors.map((e) => e.output()).join('\n')}`);
      });
    await enqueueMany(c, backend, shellJob('true'), jobs);
    const target = before + EXECUTORS * SLOTS + jobs;
    const started = performance.now();
    await fs.writeFile(gate, '');
    await waitFor('the jobs to complete', 300_000, async () => {
      const counts = await queueCounts(c);
      if ((counts.errored ?? 0) + (counts.failed ?? 0) > 0) throw new Error(`jobs did not complete: ${JSON.stringify(counts)}\n${executors[0]!.output()}`);
      return (counts.completed ?? 0) >= target;
    });
    // The gate jobs finish in the timed window too, so they are counted.
    const full = (jobs + EXECUTORS * SLOTS) / ((performance.now() - started) / 1000);
    return { baseline, full };
  } finally {
    await Promise.all(executors.map((e) => e.stop()));
    await c.stop();
    await fs.rm(gateDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- latency per runtime

async function latency(runtime: string): Promise<number[]> {
  const c = await startCoordinatorServer('postgres', { SANDFLEET_SERVE_DEMO_IMAGE: 'true' });
  const executor = startExecutorProcess(c.url, ACCESS_TOKEN, {
    EXECUTOR_RUNTIME: runtime,
    EXECUTOR_NETWORK: 'none',
    EXECUTOR_JOB_MEMORY: '512M',
    EXECUTOR_FIRECRACKER_DISK_SPACE: '256M',
    EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: c.url,
    SRC_LOG_LEVEL: 'warn',
  });
  try {
    const times: number[] = [];
    for (let i = 0; i <= JOBS; i++) {
      const started = performance.now();
      const job = await c.admin('POST', '/api/jobs', { queue: QUEUE, dockerSteps: [{ image: 'sandfleet/demo:latest', commands: ['true'] }] });
      for (;;) {
        const { state, failureMessage } = await c.admin('GET', `/api/jobs/${job.id}`);
        if (state === 'completed') break;
        if (state !== 'queued' && state !== 'processing') throw new Error(`${runtime}: job ${job.id} ended ${state}: ${failureMessage}\nexecutor output:\n${executor.output()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      if (i > 0) times.push(performance.now() - started); // the first job pulls the image
    }
    return times.sort((a, b) => a - b);
  } finally {
    await executor.stop();
    await c.close();
  }
}

console.log(machineFacts());
if (PARTS.includes('p4')) {
  console.log(`P4: no-op jobs, shell runtime, ${EXECUTORS} executors × ${SLOTS} slots; baseline: ${EXECUTORS * SLOTS} clients dequeue → markComplete against the same coordinator`);
  for (const backend of backendsFromArgs()) {
    const jobs = backend === 'postgres' ? P4_JOBS : PGLITE_JOBS;
    const { baseline, full } = await p4(backend, jobs);
    const verdict = backend === 'postgres' ? `  target ≥ 200 jobs/s: ${full >= 200 ? 'met' : 'not met'}` : '';
    console.log(`${backend.padEnd(9)} ${jobs} jobs  coordinator-only ${baseline.toFixed(1)} jobs/s  full jobs ${full.toFixed(1)} jobs/s  ratio ${(full / baseline).toFixed(2)}x${verdict}`);
  }
}
if (PARTS.includes('latency')) {
  console.log(`one-step job, enqueue → completed, ${JOBS} jobs per runtime after one warm-up (image cached)`);
  let baseline: number | undefined;
  for (const runtime of RUNTIMES) {
    const times = await latency(runtime);
    const p50 = percentile(times, 50);
    baseline ??= p50;
    console.log(`${runtime.padEnd(7)} p50 ${p50.toFixed(0)} ms  max ${times.at(-1)!.toFixed(0)} ms  ratio to ${RUNTIMES[0]} ${(p50 / baseline).toFixed(2)}x`);
  }
}
