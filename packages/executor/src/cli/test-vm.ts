import pc from 'picocolors';
import { ConfigError, loadConfig } from '../config.js';
import { chooseAccelerator } from '../sandbox/vm/accelerator.js';
import { findFirecrackerBinaries } from '../sandbox/vm/firecracker/binaries.js';
import { FirecrackerJobVm } from '../sandbox/vm/firecracker/job-vm.js';
import { jailerOptions } from '../sandbox/vm/firecracker.js';
import { guestImagesDir, installedGuestImage, type GuestImage } from '../sandbox/vm/guest-image.js';
import { vmRunDir } from '../sandbox/vm/install.js';
import { describeKvm, kvmFacts, kvmUnusableReason } from '../sandbox/vm/kvm-host.js';
import { QemuVm } from '../sandbox/vm/qemu.js';
import type { JobVm } from '../sandbox/vm/vm-sandbox.js';
import { vmmTools } from '../sandbox/vm/vmm-tools.js';

/**
 * `executor test-vm`: boots one VM with the configured VM runtime (Firecracker when
 * EXECUTOR_RUNTIME/EXECUTOR_USE_FIRECRACKER select it, QEMU microvm otherwise), runs a command in
 * it and prints the timings, or what failed and how to fix it.
 */

export interface TestVmOptions {
  command: string;
  write: (line: string) => void;
  /** Boot timeout; TCG under load is slow. @default 120_000 */
  bootTimeoutMs?: number;
}

export async function runTestVm(env: NodeJS.ProcessEnv, o: TestVmOptions): Promise<boolean> {
  const fail = (what: string, fix: string) => {
    o.write(`${pc.red('✗')} ${what}`);
    o.write(`  fix: ${fix}`);
    return false;
  };
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return fail(`configuration: ${err.problems.join('; ')}`, 'set the variables named above (executor validate lists them)');
  }
  const installed = installedGuestImage(guestImagesDir(config.stateDir));
  if ('missing' in installed) return fail(`guest image: ${installed.missing}`, 'executor install vm-image');
  const image = installed.image;
  o.write(`${pc.green('✓')} guest image ${image.dir} (kernel ${image.kernelRelease}, sha256:${image.outputDigest.slice(0, 16)}…)`);
  const kvm = kvmFacts();
  o.write(`  KVM: ${describeKvm(kvm)}`);
  const runDir = vmRunDir(config.stateDir);
  if (config.runtimeConfig.runtime === 'firecracker') return testFirecracker(config.runtimeConfig.firecracker, image, runDir, config.runtimeConfig.limits.diskBytes, o, fail);

  const qemu = (await vmmTools(config.runtimeConfig.firecracker))[0]!;
  if (!qemu.path) return fail('qemu-system-x86_64 is not installed', qemu.fix);
  o.write(`${pc.green('✓')} ${qemu.version ?? qemu.path}`);
  const choice = await chooseAccelerator({ image, runDir });
  if (choice.accelerator === 'tcg') o.write(`${pc.yellow('!')} accelerator tcg: ${choice.reason}; TCG emulates the CPU in software (boots take seconds, steps run several times slower); a host with working /dev/kvm (VMX/SVM, not PVM) runs the same guest under KVM`);
  else o.write(`${pc.green('✓')} accelerator kvm: ${choice.reason}`);
  let vm: QemuVm | undefined;
  try {
    vm = await QemuVm.boot({ image, runDir, accelerator: choice.accelerator, memoryMiB: 256, cpus: 1, bootTimeoutMs: o.bootTimeoutMs ?? 120_000 });
    o.write(`${pc.green('✓')} booted (qemu microvm, ${choice.accelerator}) in ${vm.bootMs} ms`);
    return await runCommand(vm, o, fail);
  } catch (err) {
    return fail(`the VM failed: ${err instanceof Error ? err.message.slice(0, 1500) : String(err)}`,
      choice.accelerator === 'kvm' ? 'retry with KVM unavailable to confirm TCG works; check dmesg for KVM errors' : 'rebuild the guest image (executor install vm-image); the console tail above shows where the guest stopped');
  } finally {
    await vm?.teardown();
  }
}

/** Runs the command in a booted VM and prints the result and the timings. */
async function runCommand(vm: JobVm, o: TestVmOptions, fail: (what: string, fix: string) => boolean): Promise<boolean> {
  const started = Date.now();
  const r = await vm.run(o.command, 60);
  const roundTrip = Date.now() - started;
  if (r.exitCode !== 0) return fail(`\`${o.command}\` in the guest exited ${r.exitCode}: ${r.stderr.trim().slice(0, 500)}`, 'check the command; the guest has busybox only');
  o.write(`${pc.green('✓')} \`${o.command}\` → ${r.stdout.trim().slice(0, 500)}`);
  o.write(`timings: boot ${vm.bootMs} ms, command round trip ${roundTrip} ms`);
  return true;
}

async function testFirecracker(
  settings: Parameters<typeof findFirecrackerBinaries>[0],
  image: GuestImage,
  runDir: string,
  diskBytes: number,
  o: TestVmOptions,
  fail: (what: string, fix: string) => boolean,
): Promise<boolean> {
  const binaries = findFirecrackerBinaries(settings);
  if (!binaries.firecracker) return fail(binaries.notes.join('; '), 'bring a firecracker release binary and set EXECUTOR_FIRECRACKER_BIN (or put it on PATH), or use EXECUTOR_RUNTIME=qemu');
  o.write(`${pc.green('✓')} firecracker ${binaries.firecracker}${binaries.jailer ? ` (jailer ${binaries.jailer})` : ''}`);
  const unusable = kvmUnusableReason(kvmFacts());
  if (unusable) return fail(`Firecracker needs KVM: ${unusable}`, 'run on a host with hardware virtualisation (bare metal or nested VMX/SVM), or use EXECUTOR_RUNTIME=qemu, which falls back to TCG');
  let vm: FirecrackerJobVm | undefined;
  try {
    vm = await FirecrackerJobVm.start({
      firecracker: binaries.firecracker,
      jailer: jailerOptions(binaries, settings),
      runDir, kernelPath: image.kernelPath, initrdPath: image.initrdPath,
      vcpus: 1, memoryMiB: 256, workspaceBytes: Math.min(diskBytes, 256 << 20), bootTimeoutMs: o.bootTimeoutMs ?? 120_000,
    });
    const { apiReadyMs, configureAndStartMs } = vm.vm.timings;
    o.write(`${pc.green('✓')} started: API up in ${apiReadyMs} ms, configured and InstanceStart in ${configureAndStartMs} ms, agent answered on vsock after ${vm.bootMs} ms`);
    return await runCommand(vm, o, fail);
  } catch (err) {
    return fail(`Firecracker failed: ${err instanceof Error ? err.message.slice(0, 1500) : String(err)}`, 'see the firecracker output above; check the binary\'s version, /dev/kvm permissions, and that the guest image is current (executor install vm-image)');
  } finally {
    await vm?.teardown();
  }
}
