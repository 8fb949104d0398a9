/**
 * MicroVM warm start vs cold boot, in one run: "cold" boots the guest (QEMU microvm, the
 * accelerator accelerator.ts picks: TCG here) to the agent's READY and runs a trivial step;
 * "warm" restores the same guest from a state saved once, idle, in this run (restoreGuest: load
 * the state, then its first step reseeds and sets the clock) and runs the same step. Both end with
 * the VM torn down. Prints machine facts, per-run and median times, the state's size and the ratio.
 *
 *   node --import tsx bench/vm-warm.ts [--runs=3] [--memory=128] [--images=/var/cache/sandfleet-test/vm-image]
 *
 * The guest image is built (or found) with `executor install vm-image`'s code, which downloads
 * the Debian packages with apt. VMs have no NIC here: the network adds the same wiring to both.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseAccelerator } from '../packages/executor/src/sandbox/vm/accelerator.js';
import { ensureGuestImage } from '../packages/executor/src/sandbox/vm/guest-image.js';
import { QemuVm, type QemuVmOptions } from '../packages/executor/src/sandbox/vm/qemu.js';
import { restoreGuest } from '../packages/executor/src/sandbox/vm/warm-start.js';
import { machineFacts, numberArg, stringArg } from './support.js';
import { median, saveIdleGuest, timeVm, type VmTiming } from './vm-support.js';

const RUNS = numberArg('runs', 3);
const MEMORY_MIB = numberArg('memory', 128);
const IMAGES = stringArg('images') ?? '/var/cache/sandfleet-test/vm-image';

const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-bench-vm-warm-'));
try {
  console.log(`machine: ${machineFacts()}`);
  const image = await ensureGuestImage(IMAGES);
  const choice = await chooseAccelerator({ image, runDir });
  console.log(`guest ${image.kernelRelease}, ${choice.accelerator} (${choice.reason}), ${MEMORY_MIB} MiB, 1 vCPU, ${RUNS} runs each`);
  const options: QemuVmOptions = { image, runDir, accelerator: choice.accelerator, memoryMiB: MEMORY_MIB, cpus: 1, bootTimeoutMs: 180_000, control: true };

  const stateFile = path.join(runDir, 'idle.state');
  const saved = await saveIdleGuest(options, stateFile);
  console.log(`save (once): ${saved.saveMs.toFixed(0)} ms, state ${(saved.bytes / 2 ** 20).toFixed(1)} MiB`);

  // Interleaved, so load drifts touch both alike.
  const cold: VmTiming[] = [];
  const warm: VmTiming[] = [];
  for (let i = 0; i < RUNS; i++) {
    cold.push(await timeVm(() => QemuVm.boot(options)));
    warm.push(await timeVm(() => restoreGuest(options, stateFile)));
  }
  const row = (name: string, xs: VmTiming[]) => {
    const total = xs.map((x) => x.ready + x.steps[0]!);
    console.log(`${name.padEnd(5)} start-to-ready ${xs.map((x) => x.ready.toFixed(0)).join(' / ')} ms (median ${median(xs.map((x) => x.ready)).toFixed(0)}), first step median ${median(xs.map((x) => x.steps[0]!)).toFixed(0)} ms, total median ${median(total).toFixed(0)} ms`);
    return median(total);
  };
  const coldTotal = row('cold', cold);
  const warmTotal = row('warm', warm);
  console.log(`cold / warm (start to first step done, medians): ${(coldTotal / warmTotal).toFixed(2)}×`);
} finally {
  fs.rmSync(runDir, { recursive: true, force: true });
}
