/**
 * Sandbox overhead: median start-to-exit time of a trivial step (`true`) per runtime, next to the
 * raw CLI doing the same in the same run (`bwrap … true`, `runc run` / `crun run` / `runsc run` on
 * a prepared bundle over the same unpacked image). Prints:
 *   P5  "step": Sandbox.run on a prepared sandbox (image cached: overlay mount, cgroup bookkeeping,
 *       runtime start, cleanup) ÷ the raw CLI; target ≤ 1.2×.
 *   P6  "prep+td": prepare (job disk, cgroup, netns) + teardown of a sandbox without a step;
 *       target ≤ 100 ms. "job" is prepare + one step + teardown.
 *   and the stages these are made of, timed one by one (where the time goes).
 *
 *   node --import tsx bench/sandbox-overhead.ts [runs]
 *
 * Uses network `none` (no uplink is needed) and a local registry with the test images. Docker is
 * measured only when a daemon answers at DOCKER_HOST.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { capture } from '../packages/executor/src/process/run.js';
import { JobCgroup } from '../packages/executor/src/sandbox/shared/cgroup.js';
import { JobFilesystem } from '../packages/executor/src/sandbox/shared/job-filesystem.js';
import { createJobNetwork } from '../packages/executor/src/network/job-network.js';
import { jobKey } from '../packages/executor/src/sandbox/oci/image-sandbox.js';
import { machineFacts } from './support.js';
import { BwrapRuntime } from '../packages/executor/src/sandbox/oci/bwrap.js';
import { DockerRuntime } from '../packages/executor/src/sandbox/docker/docker.js';
import { GvisorRuntime } from '../packages/executor/src/sandbox/oci/gvisor.js';
import { makeRuntimeDeps } from '../packages/executor/src/sandbox/shared/host.js';
import { OciRuntime } from '../packages/executor/src/sandbox/oci/oci.js';
import type { JobLimits, Runtime, RuntimeConfig } from '../packages/executor/src/sandbox/runtime.js';
import { ImageStore } from '../packages/executor/src/image/pull.js';
import { buildTestImages, emptyWorkspace, startRegistry, writeScripts } from '@sandfleet/test-helpers';

const RUNS = Number(process.argv[2] ?? 10);
const WARMUP = 2;
const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
const limits: JobLimits = { cpus: 1, memoryBytes: 256 << 20, pids: 128, diskBytes: 256 << 20 };

async function median(fn: () => Promise<void>): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Medians of each function, run in turns (after WARMUP rounds); undefined for an absent one. */
async function alternating(fns: (undefined | (() => Promise<void>))[]): Promise<(number | undefined)[]> {
  const times: number[][] = fns.map(() => []);
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const [n, fn] of fns.entries()) {
      if (!fn) continue;
      const t = performance.now();
      await fn();
      if (i >= WARMUP) times[n]!.push(performance.now() - t);
    }
  }
  return times.map((ts) => (ts.length ? ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)] : undefined));
}

async function mustRun(argv: string[]): Promise<void> {
  const r = await capture(argv, { env: ENV });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${r.exitCode} ${r.stderr}`);
}

const registry = await startRegistry();
const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-bench-'));
await fs.chmod(stateDir, 0o711); // the raw bwrap run reaches the rootfs as uid 100000
const rows: { name: string; raw?: number; step?: number; prep?: number; job?: number; note?: string }[] = [];
const stages: { name: string; ms: number }[] = [];
/** One stage alone: `make` then `undo`, each timed; medians of each. */
async function stage(name: string, make: () => Promise<() => Promise<void>>): Promise<void> {
  const made: number[] = [];
  const undone: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const t0 = performance.now();
    const undo = await make();
    const t1 = performance.now();
    await undo();
    if (i < WARMUP) continue;
    made.push(t1 - t0);
    undone.push(performance.now() - t1);
  }
  const mid = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  stages.push({ name: `${name}: set up`, ms: mid(made) }, { name: `${name}: undo`, ms: mid(undone) });
}
const rawRoot = path.join(stateDir, 'raw-root');
try {
  await registry.push('bench/busybox', '1', (await buildTestImages()).busyboxRoot);
  const image = `${registry.host}/bench/busybox:1`;
  const store = new ImageStore(stateDir, [], { allowedPrivateRegistries: ['127.0.0.1'] });
  const shifted = await store.pull(image, { progress: () => {}, signal: AbortSignal.timeout(60_000) });
  const plain = await store.pull(image, { progress: () => {}, signal: AbortSignal.timeout(60_000), idShift: 0 });
  // The image store's directories are root-only and the image has no /proc: the raw CLIs get a
  // copy of the same rootfs with a /proc mount point, below a directory uid 100000 can traverse.
  await mustRun(['cp', '-a', shifted.rootfs, rawRoot]);
  await fs.mkdir(path.join(rawRoot, 'proc'), { recursive: true });
  const config: RuntimeConfig = { runtime: 'auto', stateDir, registryMirrorUrls: [], imageStore: { allowedPrivateRegistries: ['127.0.0.1'] }, network: 'none', limits };

  // A bundle for the raw OCI runtimes: the unpacked image read-only, `true`, default namespaces.
  const bundle = async (name: string, rootfs: string, userns: boolean) => {
    const dir = path.join(stateDir, 'raw', name);
    await fs.mkdir(dir, { recursive: true });
    const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({
      ociVersion: '1.0.2',
      process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/bin/true'], env: ['PATH=/bin'], cwd: '/', noNewPrivileges: true },
      root: { path: rootfs, readonly: true },
      mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
      linux: {
        namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }, ...(userns ? [{ type: 'user' }] : [])],
        ...(userns ? { uidMappings: map, gidMappings: map } : {}),
        resources: { memory: { limit: limits.memoryBytes }, pids: { limit: 2048 } },
      },
    }));
    return dir;
  };

  const measure = async (name: string, rt: Runtime, raw: (() => Promise<void>) | undefined) => {
    const availability = await rt.probe();
    if (!availability.available) {
      rows.push({ name, note: `skipped: ${availability.reason}` });
      return;
    }
    // The workspace is prepared into each sandbox after it exists, so every prepare gets the script.
    const ws = await emptyWorkspace();
    const step = { key: 'bench', image, scriptPath: '.sourcegraph-executor/true.sh', dir: '', env: [] };
    const io = () => ({ onStdout: () => {}, onStderr: () => {}, signal: AbortSignal.timeout(60_000) });
    const opts = { jobId: `bench-${name}`, workspaceDir: ws, limits, network: 'none' as const, progress: () => {}, signal: AbortSignal.timeout(600_000) };
    const sandbox = await rt.prepare(opts);
    await writeScripts(sandbox.workspaceDir, { 'true.sh': 'true' });
    // Raw CLI and step runs alternate, so both see the same load (this machine's load varies by the minute).
    const [rawMs, stepMs] = await alternating([
      raw,
      async () => {
        const r = await sandbox.run(step, io());
        if (r.exitCode !== 0) throw new Error(`${name}: step exit ${r.exitCode}`);
      },
    ]);
    await sandbox.teardown();
    const prepMs = await median(async () => {
      const sb = await rt.prepare(opts);
      await sb.teardown();
    });
    const jobMs = await median(async () => {
      const sb = await rt.prepare(opts);
      await writeScripts(sb.workspaceDir, { 'true.sh': 'true' });
      await sb.run(step, io());
      await sb.teardown();
    });
    await fs.rm(ws, { recursive: true, force: true });
    rows.push({ name, raw: rawMs, step: stepMs, prep: prepMs, job: jobMs, note: availability.reason });
  };

  let n = 0;
  await measure('bwrap', new BwrapRuntime(makeRuntimeDeps(config)), async () => mustRun([
    'setpriv', '--reuid=100000', '--regid=100000', '--clear-groups', 'bwrap', '--unshare-user', '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts',
    '--ro-bind', rawRoot, '/', '--cap-drop', 'ALL', '--die-with-parent', '--new-session', '/bin/true',
  ]));
  const runcBundle = await bundle('runc', rawRoot, true);
  await measure('oci (runc)', new OciRuntime(makeRuntimeDeps(config), 'runc'), async () => mustRun(['runc', '--root', path.join(stateDir, 'raw-state'), 'run', '--bundle', runcBundle, `raw-${n++}`]));
  await measure('oci (crun)', new OciRuntime(makeRuntimeDeps(config), 'crun'), async () => mustRun(['crun', '--root', path.join(stateDir, 'raw-state-crun'), 'run', '--bundle', runcBundle, `raw-${n++}`]));
  const runscBundle = await bundle('runsc', plain.rootfs, false);
  await measure('gvisor (runsc ptrace)', new GvisorRuntime(makeRuntimeDeps(config)), async () => mustRun(['runsc', '--root', path.join(stateDir, 'raw-state-runsc'), '--platform=ptrace', '--network=none', 'run', '--bundle', runscBundle, `raw-${n++}`]));
  // Docker only when a daemon answers at DOCKER_HOST (this bench does not start one).
  const docker = new DockerRuntime(makeRuntimeDeps(config));
  if ((await docker.probe()).available) {
    const pulled = await capture(['docker', 'pull', '--quiet', image], { env: docker.env() });
    if (pulled.exitCode !== 0) throw new Error(pulled.stderr);
    await measure('docker', docker, async () => {
      const r = await capture(['docker', 'run', '--rm', '--network', 'none', '--entrypoint', '/bin/true', image], { env: docker.env() });
      if (r.exitCode !== 0) throw new Error(r.stderr);
    });
  } else rows.push({ name: 'docker', note: `skipped: ${(await docker.probe()).reason}` });

  // The stages of prepare/teardown and of a step, one at a time, as the image runtimes use them.
  const ws = await emptyWorkspace();
  await stage('job disk (sparse copy of a mkfs.ext4 template, loop mount, workspace bind)', async () => {
    const jfs = await JobFilesystem.create(stateDir, jobKey('bench-fs'), ws, limits.diskBytes);
    return () => jfs.destroy();
  });
  await stage('job cgroup (mkdir, limits)', async () => {
    const cg = JobCgroup.create(jobKey('bench-cg'), limits);
    return () => cg.destroy();
  });
  await stage('job netns, policy none (ip netns add, lo up)', async () => {
    const net = await createJobNetwork(jobKey('bench-net'), 'none', undefined, stateDir);
    return () => net.destroy();
  });
  const jfs = await JobFilesystem.create(stateDir, jobKey('bench-step'), ws, limits.diskBytes);
  let s = 0;
  await stage('step root (overlay mount, /etc files)', async () => {
    const { release } = await jfs.stepRoot(shifted.rootfs, String(++s), { resolvConf: '', hosts: '127.0.0.1\tlocalhost\n' });
    return release;
  });
  await jfs.destroy();
  await fs.rm(ws, { recursive: true, force: true });
  const spawnMs = await median(() => mustRun(['/bin/true']));
  stages.push({ name: 'one spawn of /bin/true from node', ms: spawnMs });
} finally {
  await registry.stop();
  await fs.rm(stateDir, { recursive: true, force: true });
}

const fmt = (v?: number) => (v === undefined ? '—' : `${v.toFixed(0)} ms`);
console.log(machineFacts());
console.log(`median of ${RUNS} runs (after ${WARMUP} warm-up), trivial step, job limits ${limits.memoryBytes >> 20} MiB / ${limits.diskBytes >> 20} MiB disk, network none`);
console.log(['runtime'.padEnd(24), 'raw CLI'.padStart(9), 'step'.padStart(9), 'P5 ratio'.padStart(9), 'prep+td'.padStart(9), 'P6'.padStart(5), 'job'.padStart(9)].join(' '));
for (const r of rows) {
  if (r.step === undefined) {
    console.log(`${r.name.padEnd(24)} ${r.note}`);
    continue;
  }
  const p5 = r.raw ? r.step / r.raw : undefined;
  const p5Text = p5 === undefined ? '—' : `${p5.toFixed(2)}x${p5 <= 1.2 ? '' : '!'}`;
  const p6Text = r.prep === undefined ? '—' : r.prep <= 100 ? 'met' : 'no';
  console.log([r.name.padEnd(24), fmt(r.raw).padStart(9), fmt(r.step).padStart(9), p5Text.padStart(9), fmt(r.prep).padStart(9), p6Text.padStart(5), fmt(r.job).padStart(9)].join(' '));
}
console.log('targets: P5 step ÷ raw CLI ≤ 1.2x (! = not met); P6 prepare + teardown ≤ 100 ms');
console.log('\nstages (median, one at a time):');
for (const st of stages) console.log(`  ${st.name.padEnd(58)} ${st.ms.toFixed(1).padStart(7)} ms`);
