import fs from 'node:fs';
import type { GuestImage } from './guest-image.js';
import { QemuVm, type Accelerator } from './qemu.js';

export interface AcceleratorChoice {
  accelerator: Accelerator;
  /** Why: what the probe saw, for `validate` and the executor's start-up log. */
  reason: string;
}

export interface ProbeOptions {
  image: GuestImage;
  runDir: string;
  /** How long a KVM test boot may take before KVM counts as unusable. @default 20_000 */
  bootTimeoutMs?: number;
  kvmDevice?: string;
  cpuinfo?: string;
}

/**
 * KVM when it boots the guest, TCG otherwise. `/dev/kvm` alone proves little: a nested PVM module
 * offers it without VMX/SVM, and a stock kernel then crawls in emulated bootstrap mode and dies on
 * an unemulated instruction, so KVM is used only after a test guest has answered through it.
 */
export async function chooseAccelerator(o: ProbeOptions): Promise<AcceleratorChoice> {
  const device = o.kvmDevice ?? '/dev/kvm';
  try {
    fs.accessSync(device, fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { accelerator: 'tcg', reason: `${device} is absent or not accessible` };
  }
  const cpuinfo = o.cpuinfo ?? fs.readFileSync('/proc/cpuinfo', 'utf8');
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) {
    return { accelerator: 'tcg', reason: `${device} exists but the CPU has no vmx/svm flag (a nested PVM module cannot boot a stock kernel)` };
  }
  let vm: QemuVm | undefined;
  try {
    vm = await QemuVm.boot({ image: o.image, runDir: o.runDir, accelerator: 'kvm', memoryMiB: 256, cpus: 1, bootTimeoutMs: o.bootTimeoutMs ?? 20_000 });
    const r = await vm.run('echo ok', 10);
    if (r.exitCode !== 0 || r.stdout !== 'ok\n') return { accelerator: 'tcg', reason: `a KVM test guest answered ${JSON.stringify(r)}` };
    return { accelerator: 'kvm', reason: `a KVM test guest booted in ${vm.bootMs} ms` };
  } catch (err) {
    return { accelerator: 'tcg', reason: `a KVM test guest failed: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}` };
  } finally {
    await vm?.teardown();
  }
}

let probed: Promise<AcceleratorChoice> | undefined;

/** chooseAccelerator once per process: a failing KVM probe costs a boot timeout. */
export function acceleratorOnce(o: ProbeOptions): Promise<AcceleratorChoice> {
  probed ??= chooseAccelerator(o);
  return probed;
}
