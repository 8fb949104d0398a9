/** What the microVM benches share: timing a QemuVm from start to its steps done, and saving an idle guest. */
import fs from 'node:fs';
import { QemuVm, type QemuVmOptions } from '../packages/executor/src/sandbox/vm/qemu.js';
import { saveGuestState } from '../packages/executor/src/sandbox/vm/warm-start.js';

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface VmTiming {
  /** From the start call to the VM answering (boot to READY, or restore). */
  ready: number;
  /** Each trivial step's round trip, in order. */
  steps: number[];
  /** Teardown of the VM after the last step. */
  teardown: number;
}

/** Starts a VM with `start`, runs `steps` trivial `true` steps in it, tears it down; times each part. */
export async function timeVm(start: () => Promise<QemuVm>, steps = 1): Promise<VmTiming> {
  const t0 = performance.now();
  const vm = await start();
  const ready = performance.now() - t0;
  const times: number[] = [];
  try {
    for (let i = 0; i < steps; i++) {
      const s0 = performance.now();
      const r = await vm.run('true', 30);
      if (r.exitCode !== 0) throw new Error(`the step failed: ${r.stderr}`);
      times.push(performance.now() - s0);
    }
  } catch (err) {
    await vm.teardown();
    throw err;
  }
  const d0 = performance.now();
  await vm.teardown();
  return { ready, steps: times, teardown: performance.now() - d0 };
}

/** Boots a guest with `options`, saves its idle state to `stateFile` and tears it down. */
export async function saveIdleGuest(options: QemuVmOptions, stateFile: string): Promise<{ saveMs: number; bytes: number }> {
  const vm = await QemuVm.boot(options);
  try {
    const t0 = performance.now();
    await saveGuestState(vm, stateFile);
    return { saveMs: performance.now() - t0, bytes: fs.statSync(stateFile).size };
  } finally {
    await vm.teardown();
  }
}
