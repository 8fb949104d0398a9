import os from 'node:os';
import { SandfleetError } from '@sandfleet/protocol';
import { RuntimeUnavailableError, type Availability, type JobLimits, type Runtime, type RuntimeConfig } from '../runtime.js';
import { SYSTEM_PATH } from '../shared/host.js';
import { acceleratorOnce } from './accelerator.js';
import { findFirecrackerBinaries, type FirecrackerBinaries } from './firecracker/binaries.js';
import { guestImagesDir, installedGuestImage } from './guest-image.js';
import { vmRunDir } from './install.js';
import { kvmFacts, kvmUnusableReason, type KvmSources } from './kvm-host.js';

/**
 * Whether this build's guest image has an agent listening on vsock. Firecracker has no
 * virtio-serial, and the busybox guest has no vsock tool yet, so jobs cannot run in a Firecracker
 * VM; the driver (firecracker/vm.ts) and its API lifecycle are complete and tested.
 */
export const GUEST_AGENT_OVER_VSOCK = false;

export interface FirecrackerFacts {
  binaries: FirecrackerBinaries;
  /** Undefined when a KVM test guest booted; else why KVM is not usable. */
  kvmProblem: string | undefined;
  /** What proved KVM, e.g. "a KVM test guest booted in 900 ms". */
  kvmProof?: string;
  guestAgentOverVsock: boolean;
}

/** The decision, apart from how the facts are gathered: binary, then KVM, then the guest agent. */
export function firecrackerAvailability(f: FirecrackerFacts): Availability {
  if (!f.binaries.firecracker) return { available: false, reason: f.binaries.notes.join('; ') };
  if (f.kvmProblem) return { available: false, reason: `${f.binaries.firecracker} found, but KVM does not work here: ${f.kvmProblem}` };
  const jail = f.binaries.jailer ? `jailed by ${f.binaries.jailer}` : f.binaries.notes.join('; ');
  if (!f.guestAgentOverVsock) {
    return { available: false, reason: `${f.binaries.firecracker} and KVM work (${f.kvmProof ?? 'KVM usable'}), but this build's guest image has no agent on vsock, so jobs cannot run in Firecracker yet; use EXECUTOR_RUNTIME=qemu with KVM` };
  }
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

/** One Firecracker microVM per job on KVM hosts; see GUEST_AGENT_OVER_VSOCK for what is missing. */
export class FirecrackerRuntime implements Runtime {
  readonly name = 'firecracker' as const;
  readonly isolating = true;

  constructor(private readonly config: RuntimeConfig, private readonly searchPath = SYSTEM_PATH, private readonly kvm: KvmSources = {}) {}

  async facts(): Promise<FirecrackerFacts> {
    const binaries = findFirecrackerBinaries(this.config.firecracker, this.searchPath);
    const base = { binaries, guestAgentOverVsock: GUEST_AGENT_OVER_VSOCK };
    // Cheap checks first: without a binary there is no point in a KVM test boot.
    if (!binaries.firecracker) return { ...base, kvmProblem: 'not checked' };
    const unusable = kvmUnusableReason(kvmFacts(this.kvm));
    if (unusable) return { ...base, kvmProblem: unusable };
    const installed = installedGuestImage(guestImagesDir(this.config.stateDir));
    if ('missing' in installed) return { ...base, kvmProblem: `a KVM test boot needs the guest image: ${installed.missing}` };
    const choice = await acceleratorOnce({ image: installed.image, runDir: vmRunDir(this.config.stateDir) });
    return choice.accelerator === 'kvm' ? { ...base, kvmProblem: undefined, kvmProof: choice.reason } : { ...base, kvmProblem: choice.reason };
  }

  async probe(): Promise<Availability> {
    return firecrackerAvailability(await this.facts());
  }

  async prepare(): Promise<never> {
    throw new RuntimeUnavailableError(this.name, (await this.probe()).reason);
  }
}
