/**
 * MicroVM cost against bwrap, through a real coordinator and `executor run` processes, same run:
 * a trivial job (three `true` steps in the busybox test image, network `none`) per runtime.
 *
 *   boot→step 1  from the job's dequeue to its first step starting (qemu: workspace disk, image
 *                disk, boot to the agent's READY, disk mounts; bwrap: job disk, cgroup, netns)
 *   per step     a `true` step's log entry duration (steps 2 and 3: images cached, VM up)
 *   job total    dequeue to the job's end (teardown included)
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
import { buildGuestImage, downloadGuestPackages } from '../packages/executor/src/sandbox/vm/guest-image.js';
import { chooseAccelerator } from '../packages/executor/src/sandbox/vm/accelerator.js';
import { machineFacts, numberArg } from './support.js';

const JOBS = numberArg('jobs', 3);
const VM_IMAGE_CACHE = '/var/cache/sandfleet-test/vm-image';

interface LogEntry { key: string; startTime: string; durationMs?: number }
interface Row { runtime: string; bootToStep: number; perStep: number; total: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-vm-bench-'));
// bwrap's steps run as unprivileged host uids that must reach their mounts below the state directory.
fs.chmodSync(work, 0o711);
const registry = await startRegistry();
const coordinator = await startCoordinatorProcess('pglite');
const rows: Row[] = [];
let accelerator = '';
try {
  const packages = await downloadGuestPackages(path.join(work, 'debs'));
  const guest = await buildGuestImage(packages, VM_IMAGE_CACHE);
  const choice = await chooseAccelerator({ image: guest, runDir: path.join(work, 'probe') });
  accelerator = `${choice.accelerator} (${choice.reason})`;
  await registry.push('bench/busybox', '1', (await buildTestImages()).busybox);
  const image = `${registry.host}/bench/busybox:1`;

  for (const runtime of ['bwrap', 'qemu']) {
    const stateDir = path.join(work, `state-${runtime}`);
    fs.mkdirSync(path.join(stateDir, 'vm-images'), { recursive: true });
    fs.symlinkSync(guest.dir, path.join(stateDir, 'vm-images', guest.inputDigest));
    fs.writeFileSync(path.join(stateDir, 'vm-images', 'current'), `${guest.inputDigest}\n`);
    const executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, {
      EXECUTOR_RUNTIME: runtime, EXECUTOR_STATE_DIR: stateDir, EXECUTOR_NETWORK: 'none', EXECUTOR_ALLOWED_PRIVATE_REGISTRIES: registry.host,
      EXECUTOR_JOB_NUM_CPUS: '1', EXECUTOR_JOB_MEMORY: '512M', EXECUTOR_FIRECRACKER_DISK_SPACE: '1G', EXECUTOR_QUEUE_POLL_INTERVAL: '100ms',
    });
    try {
      const samples: Row[] = [];
      for (let i = 0; i <= JOBS; i++) {
        const submitted = await coordinator.api('POST', '/api/jobs', {
          queue: 'batches',
          dockerSteps: [1, 2, 3].map((n) => ({ key: `s${n}`, image, commands: ['true'] })),
        });
        const job = await waitForJobState(coordinator, submitted.body.id, ['completed', 'failed', 'errored'], 180_000);
        if (job.state !== 'completed') throw new Error(`${runtime} job ${job.state}: ${job.failureMessage}\n${JSON.stringify(job.executionLogs, null, 1).slice(-3000)}`);
        const logs = job.executionLogs as LogEntry[];
        const step = (key: string) => logs.find((e) => e.key === key)!;
        const started = Date.parse(job.startedAt);
        if (i === 0) continue; // warm-up: image pull and image disk
        samples.push({
          runtime,
          bootToStep: Date.parse(step('step.docker.s1').startTime) - started,
          perStep: median([step('step.docker.s2').durationMs!, step('step.docker.s3').durationMs!]),
          total: Date.parse(job.finishedAt) - started,
        });
      }
      rows.push({
        runtime: runtime === 'qemu' ? `qemu-${choice.accelerator}` : runtime,
        bootToStep: median(samples.map((s) => s.bootToStep)),
        perStep: median(samples.map((s) => s.perStep)),
        total: median(samples.map((s) => s.total)),
      });
    } finally {
      await executor.stop();
    }
  }
} finally {
  await coordinator.stop();
  await registry.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

console.log(machineFacts());
console.log(`accelerator: ${accelerator}`);
console.log(`median of ${JOBS} jobs per runtime (after 1 warm-up), 3 × \`true\`, 1 vCPU / CPU, network none`);
const base = rows.find((r) => r.runtime === 'bwrap')!;
const cell = (v: number, b: number) => `${v.toFixed(0)} ms (${(v / b).toFixed(1)}x)`.padStart(20);
console.log(['runtime'.padEnd(10), 'boot→step 1'.padStart(20), 'per step'.padStart(20), 'job total'.padStart(20)].join(' '));
for (const r of rows) console.log([r.runtime.padEnd(10), cell(r.bootToStep, base.bootToStep), cell(r.perStep, base.perStep), cell(r.total, base.total)].join(' '));
