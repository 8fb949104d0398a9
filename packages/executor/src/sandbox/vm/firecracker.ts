import os from 'node:os';
import { SandfleetError } from '@sandfleet/protocol';
import { RuntimeUnavailableError, type Availability, type FirecrackerSettings, type JobLimits, type Runtime, type RuntimeConfig, type Sandbox, type SandboxOptions } from '../runtime.js';
import type { RuntimeDeps } from '../shared/host.js';
import { acceleratorOnce } from './accelerator.js';
import { findFirecrackerBinaries, type FirecrackerBinaries } from './firecracker/binaries.js';
import { FirecrackerJobVm } from './firecracker/job-vm.js';
import type { JailerOptions } from './firecracker/vm.js';
import { guestImagesDir, installedGuestImage, type GuestImage } from './guest-image.js';
import { vmRunDir } from './install.js';
import { reapOrphanedVms } from './janitor.js';
import { kvmFacts, kvmUnusableReason, type KvmSources } from './kvm-host.js';
import { VmSandbox, type JobVm, type VmBootRequest, type VmLauncher } from './vm-sandbox.js';

export interface FirecrackerFacts {
  binaries: FirecrackerBinaries;
  /** Undefined when a KVM test guest booted; else why KVM is not usable. */
  kvmProblem: string | undefined;
  /** What proved KVM, e.g. "a KVM test guest booted in 900 ms". */
  kvmProof?: string;
  /** The installed guest image the KVM test boot used. */
  image?: GuestImage;
}

/** The decision, apart from how the facts are gathered: binary, then KVM. */
export function firecrackerAvailability(f: FirecrackerFacts): Availability {
  if (!f.binaries.firecracker) return { available: false, reason: f.binaries.notes.join('; ') };
  if (f.kvmProblem) return { available: false, reason: `${f.binaries.firecracker} found, but KVM does not work here: ${f.kvmProblem}` };
  const jail = f.binaries.jailer ? `jailed by ${f.binaries.jailer}` : f.binaries.notes.join('; ');
  return { available: true, reason: `${f.binaries.firecracker} with KVM (${f.kvmProof ?? 'KVM usable'}); ${jail}` };
}

export class FirecrackerLimitsError extends SandfleetError {}

/** Firecracker's own bound on vCPUs (machine-config `vcpu_count`, 1 or even). */
export const MAX_VCPUS = 32;

/**
 * A job's machine from its limits: EXECUTOR_JOB_NUM_CPUS vCPUs (0 = the host's CPUs, made even and
 * at most 32), EXECUTOR_JOB_MEMORY in MiB, and EXECUTOR_FIRECRACKER_DISK_SPACE for the workspace
 * disk. A VM needs a memory size and a disk, so 0 (unbounded) is refused for those.
 */
export function machineForLimits(limits: JobLimits, hostCpus = os.availableParallelism()): { vcpus: number; memoryMiB: number; workspaceBytes: number } {
  let vcpus = limits.cpus === 0 ? Math.min(hostCpus, MAX_VCPUS) : limits.cpus;
  if (limits.cpus === 0 && vcpus > 1 && vcpus % 2 !== 0) vcpus -= 1;
  if (vcpus > MAX_VCPUS || (vcpus > 1 && vcpus % 2 !== 0)) throw new FirecrackerLimitsError(`EXECUTOR_JOB_NUM_CPUS=${limits.cpus}: Firecracker takes 1 or an even number of vCPUs up to ${MAX_VCPUS}`);
  const memoryMiB = Math.floor(limits.memoryBytes / 2 ** 20);
  if (memoryMiB < 128) throw new FirecrackerLimitsError(`EXECUTOR_JOB_MEMORY must give a Firecracker VM at least 128 MiB (got ${memoryMiB} MiB)`);
  if (limits.diskBytes < 16 * 2 ** 20) throw new FirecrackerLimitsError('EXECUTOR_FIRECRACKER_DISK_SPACE must be at least 16M for the workspace disk');
  return { vcpus, memoryMiB, workspaceBytes: limits.diskBytes };
}

/** A guest that has not answered by then on KVM is not coming up. */
const BOOT_TIMEOUT_MS = 30_000;

/** One Firecracker microVM per job on KVM hosts (VmSandbox with a FirecrackerLauncher). */
export class FirecrackerRuntime implements Runtime {
  readonly name = 'firecracker' as const;
  readonly isolating = true;
  private readonly config: RuntimeConfig;

  constructor(private readonly deps: RuntimeDeps, private readonly kvm: KvmSources = {}) {
    this.config = deps.config;
  }

  async facts(): Promise<FirecrackerFacts> {
    const binaries = findFirecrackerBinaries(this.config.firecracker, this.deps.host.path);
    // Cheap checks first: without a binary there is no point in a KVM test boot.
    if (!binaries.firecracker) return { binaries, kvmProblem: 'not checked' };
    const unusable = kvmUnusableReason(kvmFacts(this.kvm));
    if (unusable) return { binaries, kvmProblem: unusable };
    const installed = installedGuestImage(guestImagesDir(this.config.stateDir));
    if ('missing' in installed) return { binaries, kvmProblem: `a KVM test boot needs the guest image: ${installed.missing}` };
    const choice = await acceleratorOnce({ image: installed.image, runDir: vmRunDir(this.config.stateDir) });
    return choice.accelerator === 'kvm' ? { binaries, kvmProblem: undefined, kvmProof: choice.reason, image: installed.image } : { binaries, kvmProblem: choice.reason };
  }

  async probe(): Promise<Availability> {
    return firecrackerAvailability(await this.facts());
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    const facts = await this.facts();
    const availability = firecrackerAvailability(facts);
    // Available means a KVM test boot of the installed guest image worked.
    if (!availability.available || !facts.image) throw new RuntimeUnavailableError(this.name, availability.reason);
    return new VmSandbox(this.deps, options, firecrackerLauncher(this.config, facts.binaries, facts.image, vmRunDir(this.config.stateDir)));
  }

  /** Kills and removes VMs whose executor died. */
  reapLeftovers(): Promise<string[]> {
    return reapOrphanedVms(vmRunDir(this.config.stateDir), this.config.vmPrefix);
  }
}

/** How the jailer runs Firecracker (EXECUTOR_FIRECRACKER_JAILER_UID/_GID), when it was found and is to be used. */
export function jailerOptions(binaries: FirecrackerBinaries, settings: FirecrackerSettings | undefined): JailerOptions | undefined {
  return binaries.jailer ? { binary: binaries.jailer, uid: settings?.jailerUid ?? 65534, gid: settings?.jailerGid ?? 65534 } : undefined;
}

/**
 * Firecracker's half of a job VM: drives in order (the guest names them vda, vdb, …), the tap the
 * network layer made, Firecracker (or the jailer) inside the job's network namespace, the agent
 * over vsock. Exported for tests, which run it with a Firecracker stand-in.
 */
export function firecrackerLauncher(config: RuntimeConfig, binaries: FirecrackerBinaries, image: GuestImage, runDir: string, bootTimeoutMs = BOOT_TIMEOUT_MS): VmLauncher {
  const machine = machineForLimits(config.limits);
  const jailer = jailerOptions(binaries, config.firecracker);
  const firecracker = binaries.firecracker;
  if (!firecracker) throw new RuntimeUnavailableError('firecracker', binaries.notes.join('; '));
  return {
    runtimeName: 'firecracker',
    runDir,
    shape: { memoryMiB: machine.memoryMiB, cpus: machine.vcpus },
    diskNaming: 'order',
    description: jailer ? 'firecracker, jailed' : 'firecracker',
    boot: (r: VmBootRequest): Promise<JobVm> => FirecrackerJobVm.start({
      firecracker, jailer, runDir, vmDir: r.vmDir, netnsPath: r.network.netnsPath,
      kernelPath: image.kernelPath, initrdPath: image.initrdPath, kernelArgs: r.network.kernelArgs,
      vcpus: machine.vcpus, memoryMiB: machine.memoryMiB, workspaceBytes: 0,
      drives: r.disks.map((d, i) => ({ id: i === 0 ? 'workspace' : `image${i - 1}`, pathOnHost: d.path, readOnly: d.readOnly, ownedByVm: i === 0 })),
      tap: r.network.tap ? { hostDevName: r.network.tap.name, guestMac: r.network.tap.mac } : undefined,
      bootTimeoutMs, signal: r.signal,
    }),
  };
}
