/**
 * Isolation cost per runtime against bwrap, same run: a trivial job (three `true` steps in the
 * busybox test image, network `none`, 1 vCPU, 512 MiB) through a real coordinator and one
 * `executor run` process per runtime, back to back: bwrap, oci with crun and with runc
 * (EXECUTOR_OCI_RUNTIME), gvisor, qemu (cold boot per job).
 *
 *   boot→step 1  from the job's dequeue to its first step starting (qemu: workspace disk, image
 *                disk, boot to the agent's READY, disk mounts; the others: job disk, cgroup, netns)
 *   per step     a `true` step's log entry duration (steps 2 and 3: images cached, sandbox up)
 *   job total    dequeue to the job's end (teardown included)
 *
 * Two more rows at the QemuVm level (sandbox/vm/qemu.ts, warm-start.ts), not through the executor:
 * the runtime boots every job cold and does not restore saved guests yet, so the warm start is
 * measured on a bare VM (no disks, no NIC) restored from an idle state saved once in this run, next
 * to a cold boot of the same bare VM: start → READY, a `true` step (2nd and 3rd), start → teardown.
 * Runtimes that cannot run here are printed as skipped with their probe's reason.
 *
 *   node --import tsx bench/vm-boot.ts [--jobs=3]
 *
 * Medians over the jobs; the first job of each runtime is a warm-up (image pull, image disk).
 * Guest image: built once into the test cache (/var/cache/sandfleet-test/vm-image).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildTestImages, startExecutorProcess, startRegistry } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorProcess, waitForJobState } from '@sandfleet/test-helpers/coordinator';
import { loadRuntime } from '../packages/executor/src/sandbox/registry.js';
import type { OciBinary, RuntimeConfig, RuntimeName } from '../packages/executor/src/sandbox/runtime.js';
import { buildGuestImage, downloadGuestPackages, type GuestImage } from '../packages/executor/src/sandbox/vm/guest-image.js';
import { chooseAccelerator, type AcceleratorChoice } from '../packages/executor/src/sandbox/vm/accelerator.js';
import { QemuVm, type QemuVmOptions } from '../packages/executor/src/sandbox/vm/qemu.js';
import { restoreGuest } from '../packages/executor/src/sandbox/vm/warm-start.js';
import { machineFacts, numberArg } from './support.js';
import { median, saveIdleGuest, timeVm, type VmTiming } from './vm-support.js';

const JOBS = numberArg('jobs', 3);
const VM_IMAGE_CACHE = '/var/cache/sandfleet-test/vm-image';
const MEMORY_MIB = 512;

/** One measured configuration: a runtime, for oci the CLI it drives, for qemu whether it warm-starts. */
interface Variant { runtime: RuntimeName; label: string; ociBinary?: OciBinary; warmStart?: boolean }
const variants = (qemuLabel: string): Variant[] => [
  { runtime: 'bwrap', label: 'bwrap' },
  { runtime: 'oci', label: 'oci (crun)', ociBinary: 'crun' },
  { runtime: 'oci', label: 'oci (runc)', ociBinary: 'runc' },
  { runtime: 'gvisor', label: 'gvisor' },
  { runtime: 'qemu', label: `${qemuLabel} cold`, warmStart: false },
  // The warm-up job saves the idle guest for this shape; the measured ones are restored from it.
  { runtime: 'qemu', label: `${qemuLabel} warm`, warmStart: true },
];

interface LogEntry { key: string; startTime: string; durationMs?: number }
interface Row { runtime: string; bootToStep: number; perStep: number; total: number }

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-vm-bench-'));
// bwrap's steps run as unprivileged host uids that must reach their mounts below the state directory.
fs.chmodSync(work, 0o711);
const limits = { cpus: 1, memoryBytes: MEMORY_MIB * 2 ** 20, pids: 0, diskBytes: 2 ** 30 };
const runtimeConfig = (variant: Variant, stateDir: string): RuntimeConfig => ({
  runtime: variant.runtime, stateDir, registryMirrorUrls: [], network: 'none', limits, ociBinary: variant.ociBinary,
});

/** A runtime's state directory, with the guest image installed as `executor install vm-image` leaves it. */
function stateDirFor(runtime: RuntimeName, guest: GuestImage): string {
  const stateDir = path.join(work, `state-${runtime}`);
  if (fs.existsSync(stateDir)) return stateDir;
  fs.mkdirSync(path.join(stateDir, 'vm-images'), { recursive: true });
  fs.symlinkSync(guest.dir, path.join(stateDir, 'vm-images', guest.inputDigest));
  fs.writeFileSync(path.join(stateDir, 'vm-images', 'current'), `${guest.inputDigest}\n`);
  return stateDir;
}

/** Why `variant` cannot run here, or undefined when its probe says it can. */
async function unavailable(variant: Variant, guest: GuestImage): Promise<string | undefined> {
  const probed = await (await loadRuntime(variant.runtime, runtimeConfig(variant, stateDirFor(variant.runtime, guest)))).probe();
  return probed.available ? undefined : probed.reason;
}

async function runExecutorJobs(
  variant: Variant, guest: GuestImage, image: string,
  coordinator: Awaited<ReturnType<typeof startCoordinatorProcess>>, registryHost: string,
): Promise<Omit<Row, 'runtime'>> {
  const { runtime } = variant;
  const stateDir = stateDirFor(runtime, guest);
  const executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, {
    ...(variant.ociBinary ? { EXECUTOR_OCI_RUNTIME: variant.ociBinary } : {}),
    ...(variant.warmStart !== undefined ? { EXECUTOR_VM_WARM_START: String(variant.warmStart) } : {}),
    EXECUTOR_RUNTIME: runtime, EXECUTOR_STATE_DIR: stateDir, EXECUTOR_NETWORK: 'none', EXECUTOR_ALLOWED_PRIVATE_REGISTRIES: registryHost,
    EXECUTOR_JOB_NUM_CPUS: '1', EXECUTOR_JOB_MEMORY: `${MEMORY_MIB}M`, EXECUTOR_FIRECRACKER_DISK_SPACE: '1G', EXECUTOR_QUEUE_POLL_INTERVAL: '100ms',
  });
  try {
    const samples: Omit<Row, 'runtime'>[] = [];
    for (let i = 0; i <= JOBS; i++) {
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'batches',
        dockerSteps: [1, 2, 3].map((n) => ({ key: `s${n}`, image, commands: ['true'] })),
      });
      const job = await waitForJobState(coordinator, submitted.body.id, ['completed', 'failed', 'errored'], 180_000);
      if (job.state !== 'completed') throw new Error(`${variant.label} job ${job.state}: ${job.failureMessage}\n${JSON.stringify(job.executionLogs, null, 1).slice(-3000)}`);
      const logs = job.executionLogs as LogEntry[];
      const step = (key: string) => logs.find((e) => e.key === key)!;
      const started = Date.parse(job.startedAt);
      if (i === 0) continue; // warm-up: image pull and image disk
      samples.push({
        bootToStep: Date.parse(step('step.docker.s1').startTime) - started,
        perStep: median([step('step.docker.s2').durationMs!, step('step.docker.s3').durationMs!]),
        total: Date.parse(job.finishedAt) - started,
      });
    }
    return summarize(samples);
  } finally {
    await executor.stop();
  }
}

function summarize(samples: Omit<Row, 'runtime'>[]): Omit<Row, 'runtime'> {
  return {
    bootToStep: median(samples.map((s) => s.bootToStep)),
    perStep: median(samples.map((s) => s.perStep)),
    total: median(samples.map((s) => s.total)),
  };
}

/** Cold boot and warm restore of the bare guest, interleaved so load drifts touch both alike. */
async function runVmLevel(guest: GuestImage, choice: AcceleratorChoice): Promise<{ cold: Omit<Row, 'runtime'>; warm: Omit<Row, 'runtime'>; save: string }> {
  const runDir = path.join(work, 'vm-level');
  fs.mkdirSync(runDir);
  const options: QemuVmOptions = { image: guest, runDir, accelerator: choice.accelerator, memoryMiB: MEMORY_MIB, cpus: 1, bootTimeoutMs: 180_000, control: true };
  const stateFile = path.join(runDir, 'idle.state');
  const saved = await saveIdleGuest(options, stateFile);
  const asRow = (t: VmTiming) => ({ bootToStep: t.ready, perStep: median(t.steps.slice(1)), total: t.ready + t.steps.reduce((a, b) => a + b, 0) + t.teardown });
  const cold: Omit<Row, 'runtime'>[] = [];
  const warm: Omit<Row, 'runtime'>[] = [];
  for (let i = 0; i < JOBS; i++) {
    cold.push(asRow(await timeVm(() => QemuVm.boot(options), 3)));
    warm.push(asRow(await timeVm(() => restoreGuest(options, stateFile), 3)));
  }
  return { cold: summarize(cold), warm: summarize(warm), save: `${saved.saveMs.toFixed(0)} ms, state ${(saved.bytes / 2 ** 20).toFixed(1)} MiB` };
}

const registry = await startRegistry();
const coordinator = await startCoordinatorProcess('pglite');
const rows: Row[] = [];
const skipped: { runtime: string; reason: string }[] = [];
let choice: AcceleratorChoice | undefined;
let saveFacts = '';
try {
  const packages = await downloadGuestPackages(path.join(work, 'debs'));
  const guest = await buildGuestImage(packages, VM_IMAGE_CACHE);
  choice = await chooseAccelerator({ image: guest, runDir: path.join(work, 'probe') });
  await registry.push('bench/busybox', '1', (await buildTestImages()).busybox);
  const image = `${registry.host}/bench/busybox:1`;
  const qemuLabel = `qemu-${choice.accelerator}`;

  for (const variant of variants(qemuLabel)) {
    const why = await unavailable(variant, guest);
    if (why) {
      skipped.push({ runtime: variant.label, reason: why });
      continue;
    }
    rows.push({ runtime: variant.label, ...(await runExecutorJobs(variant, guest, image, coordinator, registry.host)) });
  }
  const vm = await runVmLevel(guest, choice);
  rows.push({ runtime: `${qemuLabel} cold, VM level`, ...vm.cold }, { runtime: `${qemuLabel} warm, VM level`, ...vm.warm });
  saveFacts = vm.save;
  if (choice.accelerator !== 'kvm') skipped.push({ runtime: 'qemu-kvm', reason: choice.reason });
  const firecrackerVariant = { runtime: 'firecracker', label: 'firecracker' } as const;
  const firecracker = await unavailable(firecrackerVariant, guest);
  if (firecracker) skipped.push({ runtime: 'firecracker', reason: firecracker });
  // On a KVM host with the operator's binary (EXECUTOR_FIRECRACKER_BIN or PATH) the same jobs run in Firecracker.
  else rows.push({ runtime: 'firecracker', ...(await runExecutorJobs(firecrackerVariant, guest, image, coordinator, registry.host)) });
} finally {
  await coordinator.stop();
  await registry.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

console.log(machineFacts());
console.log(`accelerator: ${choice?.accelerator} (${choice?.reason})`);
console.log(`median of ${JOBS} jobs per runtime (after 1 warm-up), 3 × \`true\`, 1 vCPU / CPU, ${MEMORY_MIB} MiB, network none`);
console.log(`VM level: bare guest (no disks, no NIC), ${MEMORY_MIB} MiB; idle state saved once: ${saveFacts}`);
const base = rows.find((r) => r.runtime === 'bwrap')!;
const cell = (v: number, b: number) => `${v.toFixed(0)} ms (${(v / b).toFixed(1)}x)`.padStart(20);
const width = Math.max(...rows.map((r) => r.runtime.length), 10);
console.log(['runtime'.padEnd(width), 'boot→step 1'.padStart(20), 'per step'.padStart(20), 'job total'.padStart(20)].join(' '));
for (const r of rows) console.log([r.runtime.padEnd(width), cell(r.bootToStep, base.bootToStep), cell(r.perStep, base.perStep), cell(r.total, base.total)].join(' '));
for (const s of skipped) console.log(`${s.runtime.padEnd(width)} skipped: ${s.reason}`);
