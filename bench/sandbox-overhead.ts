/**
 * Sandbox overhead: median start-to-exit time of a trivial step (`true`) per runtime, next to the
 * raw CLI doing the same in the same run (`bwrap … true`, `runc run` / `crun run` / `runsc run` on
 * a prepared bundle over the same unpacked image). "step" is Sandbox.run on a prepared sandbox
 * (image cached: overlay mount, cgroup bookkeeping, runtime start, cleanup); "job" adds
 * prepare (loop disk + mkfs, cgroup, netns) and teardown.
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

async function mustRun(argv: string[]): Promise<void> {
  const r = await capture(argv, { env: ENV });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${r.exitCode} ${r.stderr}`);
}

const registry = await startRegistry();
const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-bench-'));
await fs.chmod(stateDir, 0o711); // the raw bwrap run reaches the rootfs as uid 100000
const rows: { name: string; raw?: number; step?: number; job?: number; note?: string }[] = [];
try {
  await registry.push('bench/busybox', '1', (await buildTestImages()).busyboxRoot);
  const image = `${registry.host}/bench/busybox:1`;
  const store = new ImageStore(stateDir, [], { allowedPrivateRegistries: ['127.0.0.1'] });
  const shifted = await store.pull(image, { progress: () => {}, signal: AbortSignal.timeout(60_000) });
  const plain = await store.pull(image, { progress: () => {}, signal: AbortSignal.timeout(60_000), idShift: 0 });
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
    const rawMs = raw ? await median(raw) : undefined;
    const sandbox = await rt.prepare(opts);
    await writeScripts(sandbox.workspaceDir, { 'true.sh': 'true' });
    const stepMs = await median(async () => {
      const r = await sandbox.run(step, io());
      if (r.exitCode !== 0) throw new Error(`${name}: step exit ${r.exitCode}`);
    });
    await sandbox.teardown();
    const jobMs = await median(async () => {
      const sb = await rt.prepare(opts);
      await writeScripts(sb.workspaceDir, { 'true.sh': 'true' });
      await sb.run(step, io());
      await sb.teardown();
    });
    await fs.rm(ws, { recursive: true, force: true });
    rows.push({ name, raw: rawMs, step: stepMs, job: jobMs, note: availability.reason });
  };

  let n = 0;
  await measure('bwrap', new BwrapRuntime(makeRuntimeDeps(config)), async () => mustRun([
    'setpriv', '--reuid=100000', '--regid=100000', '--clear-groups', 'bwrap', '--unshare-user', '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts',
    '--ro-bind', shifted.rootfs, '/', '--cap-drop', 'ALL', '--die-with-parent', '--new-session', '/bin/true',
  ]));
  const runcBundle = await bundle('runc', shifted.rootfs, true);
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
} finally {
  await registry.stop();
  await fs.rm(stateDir, { recursive: true, force: true });
}

const fmt = (v?: number) => (v === undefined ? '—' : `${v.toFixed(0)} ms`);
console.log(`median of ${RUNS} runs (after ${WARMUP} warm-up), trivial step, ${os.cpus().length} CPUs`);
console.log(['runtime'.padEnd(24), 'raw CLI'.padStart(9), 'step'.padStart(9), 'ratio'.padStart(7), 'job'.padStart(9), 'ratio'.padStart(7)].join(' '));
for (const r of rows) {
  if (r.step === undefined) {
    console.log(`${r.name.padEnd(24)} ${r.note}`);
    continue;
  }
  const ratio = (v?: number) => (v !== undefined && r.raw ? `${(v / r.raw).toFixed(1)}x` : '—');
  console.log([r.name.padEnd(24), fmt(r.raw).padStart(9), fmt(r.step).padStart(9), ratio(r.step).padStart(7), fmt(r.job).padStart(9), ratio(r.job).padStart(7)].join(' '));
}
