/**
 * A step that floods its log, through a real coordinator (in this process, PostgreSQL) and a real
 * executor process: 100 MB of short lines, and 100 MB without a single newline. For each: time from
 * enqueue to the end of the job, peak RSS (VmHWM, reset before each case) of the executor and of this
 * coordinator (in a child process of this bench, fresh per case) against their idle RSS in the same
 * run, the bytes stored (from the user API), how long `GET /api/jobs/{id}` takes (it shows the start
 * of each entry) and how long the streamed `GET /api/jobs/{id}/log.txt` takes for the whole log.
 *   node --import tsx bench/log-flood.ts [--runtimes=shell,bwrap] [--bytes=100000000] [--memory-trace] [--node-flags=...]
 * `--memory-trace` samples the executor's `process.memoryUsage()` (bench/memory-trace.ts) and prints the
 * peak of each kind of memory; `--node-flags` (comma-separated) are given to the executor's node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ACCESS_TOKEN, ADMIN_TOKEN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';

const RUNTIMES = (process.argv.find((a) => a.startsWith('--runtimes='))?.split('=')[1] ?? 'shell,bwrap').split(',');
/** `--one=<runtime>:<case index>`: measure that case alone and print its row as JSON (a child of the main run). */
const ONE = process.argv.find((a) => a.startsWith('--one='))?.split('=')[1];
const BYTES = Number(process.argv.find((a) => a.startsWith('--bytes='))?.split('=')[1] ?? 100_000_000);
const MEMORY_TRACE = process.argv.includes('--memory-trace');
const NODE_FLAGS = process.argv.find((a) => a.startsWith('--node-flags='))?.slice('--node-flags='.length).split(',').filter(Boolean) ?? [];
const JOB_TIMEOUT_MS = 150_000;
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const EXECUTOR_BIN = path.resolve(BENCH_DIR, '../packages/executor/bin/executor.js');
const MEMORY_TRACE_MODULE = path.resolve(BENCH_DIR, 'memory-trace.ts');

const CASES = [
  { name: 'lines', script: `yes line | head -c ${BYTES}` },
  { name: 'no newline', script: `head -c ${BYTES} /dev/zero | tr '\\0' x` },
];

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM). */
function memoryOf(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return kib * 1024;
}

/** Resets VmHWM to the current RSS, so the next reading is this case's peak. */
function resetPeak(pid: number | 'self'): void {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

v8.setFlagsFromString('--expose-gc');
/** This process's collector, so its idle RSS is not last case's garbage. */
const gc = vm.runInNewContext('gc') as () => void;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
/** Idle → peak, and the growth in MB (10^6 bytes, the unit of the targets). */
const growth = (idle: number, peak: number) => `${mib(idle)} → ${mib(peak)} (+${((peak - idle) / 1e6).toFixed(0)} MB)`;

interface Row {
  runtime: string;
  name: string;
  state: string;
  seconds: number;
  executorIdle: number;
  executorPeak: number;
  coordinatorIdle: number;
  coordinatorPeak: number;
  storedBytes: number;
  getMs: number;
  downloadMs: number;
  tail: string;
  /** With --memory-trace: the executor's memory by kind, at idle and at its peak during the case. */
  trace?: { idle: MemorySample; peak: MemorySample; file: string } | undefined;
}

/** One line of bench/memory-trace.ts. */
interface MemorySample {
  ms: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** A garbage collection, as bench/memory-trace.ts writes it. */
interface GcRecord {
  ms: number;
  gc: string;
  durationMs: number;
}

const MEMORY_KINDS = ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'] as const;

/** The samples in bytes [from, to) of a trace file. */
function readTrace(file: string, from: number, to?: number): MemorySample[] {
  const text = fs.readFileSync(file).subarray(from, to).toString('utf8');
  const records = text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as MemorySample | GcRecord);
  return records.filter((r): r is MemorySample => 'rss' in r);
}

/** The last sample before the case started (at byte `caseStart` of the file) and, per kind, the highest after. */
function summarizeTrace(file: string, caseStart: number): Row['trace'] {
  const idle = readTrace(file, 0, caseStart).at(-1);
  const during = readTrace(file, caseStart);
  if (!idle || during.length === 0) return undefined;
  const peak = { ...idle };
  for (const sample of during) for (const kind of MEMORY_KINDS) peak[kind] = Math.max(peak[kind], sample[kind]);
  return { idle, peak, file };
}

async function startExecutor(url: string, runtime: string, stateDir: string, traceFile: string | undefined): Promise<ChildProcess> {
  const tracing = traceFile ? ['--import', 'tsx', '--import', MEMORY_TRACE_MODULE] : [];
  const executor = spawn(process.execPath, [...NODE_FLAGS, ...tracing, EXECUTOR_BIN, 'run'], {
    env: {
      ...(traceFile ? { MEMORY_TRACE_FILE: traceFile } : {}),
      PATH: process.env.PATH!,
      HOME: stateDir,
      EXECUTOR_FRONTEND_URL: url,
      EXECUTOR_FRONTEND_PASSWORD: ACCESS_TOKEN,
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_RUNTIME: runtime,
      EXECUTOR_NETWORK: 'none',
      EXECUTOR_JOB_MEMORY: '512M',
      EXECUTOR_FIRECRACKER_DISK_SPACE: '256M',
      EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: url,
      EXECUTOR_STATE_DIR: stateDir,
      EXECUTOR_WORKSPACE_DIR: stateDir,
      SRC_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Idle means: started, registered, polling.
  await new Promise((r) => setTimeout(r, 3_000));
  if (executor.exitCode !== null) throw new Error(`executor (${runtime}) exited with ${executor.exitCode}`);
  return executor;
}

/** One case on a fresh coordinator and executor, so neither carries memory from another case. */
async function measure(runtime: string, { name, script }: (typeof CASES)[number]): Promise<Row> {
  const c = await startCoordinatorServer('postgres', { SANDFLEET_SERVE_DEMO_IMAGE: 'true' });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-bench-executor-'));
  const traceFile = MEMORY_TRACE ? path.join(os.tmpdir(), `sandfleet-log-flood-${runtime}-${name.replace(/\W+/g, '-')}-${process.pid}.jsonl`) : undefined;
  const executor = await startExecutor(c.url, runtime, stateDir, traceFile);
  try {
    // A first small job pulls the image, so the case measures output only.
    await runJob(c, 'true');
    gc();
    const executorIdle = memoryOf(executor.pid!, 'VmRSS');
    const coordinatorIdle = memoryOf('self', 'VmRSS');
    resetPeak(executor.pid!);
    resetPeak('self');
    const traceStart = traceFile ? fs.statSync(traceFile).size : 0;
    const started = performance.now();
    const { id, state } = await runJob(c, script);
    const seconds = (performance.now() - started) / 1000;
    const executorPeak = memoryOf(executor.pid!, 'VmHWM');
    const coordinatorPeakRun = memoryOf('self', 'VmHWM');
    const trace = traceFile ? summarizeTrace(traceFile, traceStart) : undefined;
    const getStarted = performance.now();
    const job = await c.admin('GET', `/api/jobs/${id}`);
    const getMs = performance.now() - getStarted;
    const step = (job.executionLogs as { key: string; out?: string; outBytes?: number }[]).find((e) => e.key.startsWith('step.'));
    // The job view shows the start of each entry; the whole log is the streamed text download.
    const download = await downloadLog(c, id);
    return {
      runtime,
      name,
      state,
      seconds,
      executorIdle,
      executorPeak,
      coordinatorIdle,
      coordinatorPeak: coordinatorPeakRun,
      storedBytes: step?.outBytes ?? Buffer.byteLength(step?.out ?? ''),
      getMs,
      downloadMs: download.ms,
      tail: download.tail.trim().split('\n').at(-1) ?? '',
      trace,
    };
  } finally {
    executor.kill('SIGTERM');
    await new Promise((r) => executor.once('exit', r));
    await c.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Streams `GET /api/jobs/{id}/log.txt`, keeping only its end: how long the whole log takes to fetch. */
async function downloadLog(c: CoordinatorServer, id: number): Promise<{ ms: number; tail: string }> {
  const started = performance.now();
  const res = await fetch(`${c.url}/api/jobs/${id}/log.txt`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
  const decoder = new TextDecoder();
  let tail = '';
  for await (const chunk of res.body!) tail = (tail + decoder.decode(chunk, { stream: true })).slice(-300);
  return { ms: performance.now() - started, tail };
}

async function runJob(c: CoordinatorServer, command: string): Promise<{ id: number; state: string }> {
  const { id } = await c.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'sandfleet/demo:latest', commands: [command] }] });
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    // The list view carries no logs, so polling does not load the coordinator.
    const { jobs } = await c.admin('GET', '/api/jobs?queue=batches&limit=5');
    const state = (jobs as { id: number; state: string }[]).find((j) => j.id === id)?.state ?? 'unknown';
    if (state !== 'queued' && state !== 'processing') return { id, state };
    if (Date.now() > deadline) {
      await c.admin('POST', `/api/jobs/${id}/cancel`);
      return { id, state: 'timed out' };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Each case runs in a fresh process, so the coordinator's idle RSS is not an earlier case's heap. */
function measureInChild(runtime: string, index: number): Promise<Row> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), `--one=${runtime}:${index}`, ...process.argv.slice(2).filter((a) => !a.startsWith('--one='))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as Row);
      else reject(new Error(`exit ${code}: ${out.trim().slice(-300)}`));
    });
  });
}

if (ONE) {
  const [runtime, index] = ONE.split(':');
  console.log(JSON.stringify(await measure(runtime!, CASES[Number(index)]!)));
  process.exit(0);
}

console.log(`log flood: ${BYTES} bytes of output per step; RSS idle → peak (VmHWM); coordinator and executor fresh per case${NODE_FLAGS.length ? `; executor node flags: ${NODE_FLAGS.join(' ')}` : ''}`);
const all: Row[] = [];
for (const runtime of RUNTIMES) {
  for (const [index, flood] of CASES.entries()) {
    try {
      all.push(await measureInChild(runtime, index));
    } catch (err) {
      console.log(`${runtime}/${flood.name}: skipped (${err instanceof Error ? err.message : String(err)})`);
    }
  }
}
const header = ['runtime', 'output', 'state', 'time', 'executor RSS', 'coordinator RSS', 'stored', 'GET job', 'GET log.txt'];
const table = all.map((r) => [
  r.runtime,
  r.name,
  r.state,
  `${r.seconds.toFixed(1)} s`,
  growth(r.executorIdle, r.executorPeak),
  growth(r.coordinatorIdle, r.coordinatorPeak),
  `${r.storedBytes} B`,
  `${r.getMs.toFixed(0)} ms`,
  `${r.downloadMs.toFixed(0)} ms`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
for (const row of [header, ...table]) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
for (const r of all) {
  if (!r.trace) continue;
  const kinds = MEMORY_KINDS.map((kind) => `${kind} ${mib(r.trace!.idle[kind])} → ${mib(r.trace!.peak[kind])}`);
  console.log(`${r.runtime}/${r.name}: executor memoryUsage() idle → peak: ${kinds.join(', ')} (samples: ${r.trace.file})`);
}
for (const r of all) console.log(`${r.runtime}/${r.name}: last line stored: ${r.tail.length > 200 ? `${r.tail.slice(0, 40)}… (${r.tail.length} characters)` : r.tail}`);
process.exit(0);
