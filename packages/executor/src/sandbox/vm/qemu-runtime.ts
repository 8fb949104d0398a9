import os from 'node:os';
import { findBinary, type RuntimeDeps } from '../shared/host.js';
import { RuntimeUnavailableError, type Availability, type JobLimits, type Runtime, type Sandbox, type SandboxOptions } from '../runtime.js';
import { acceleratorOnce, type AcceleratorChoice } from './accelerator.js';
import { guestImagesDir, installedGuestImage, type GuestImage } from './guest-image.js';
import { vmRunDir } from './install.js';
import { reapOrphanedVms } from './janitor.js';
import { JobTemplates, slotDisks } from './job-template.js';
import { QemuVm } from './qemu.js';
import { claimVmmIdentity, releaseVmmIdentity, type VmmIdentity } from './vmm-identity.js';
import { VmSandbox, workspaceDiskBytes, type JobVm, type VmBootRequest, type VmLauncher } from './vm-sandbox.js';

const MiB = 1024 * 1024;
/** Below this the guest kernel, agent and a step's scratch space do not fit. */
export const MIN_VM_MEMORY_MIB = 256;
/** EXECUTOR_JOB_MEMORY=0 (unbounded) still needs a number for QEMU. */
export const UNBOUNDED_VM_MEMORY_MIB = 2048;
/** A guest that has not said READY by then under TCG on a loaded host is not coming up. */
const TCG_BOOT_TIMEOUT_MS = 120_000;
const KVM_BOOT_TIMEOUT_MS = 30_000;

/** The VM's size from the job limits: memory in [256 MiB, ¾ of the host's], vCPUs in [1, host CPUs]. */
export function vmShape(limits: JobLimits, hostMemoryBytes = os.totalmem(), hostCpus = os.availableParallelism()): { memoryMiB: number; cpus: number } {
  const maxMiB = Math.max(MIN_VM_MEMORY_MIB, Math.floor((hostMemoryBytes * 0.75) / MiB));
  const wanted = limits.memoryBytes > 0 ? Math.floor(limits.memoryBytes / MiB) : UNBOUNDED_VM_MEMORY_MIB;
  const cpus = limits.cpus > 0 ? Math.min(limits.cpus, hostCpus) : hostCpus;
  return { memoryMiB: Math.min(maxMiB, Math.max(MIN_VM_MEMORY_MIB, wanted)), cpus: Math.max(1, cpus) };
}

export interface QemuRuntimeOptions {
  /** Where guest images are installed. @default <stateDir>/vm-images */
  imagesDir?: string;
  /** Parent of the per-VM directories. @default <stateDir>/vm-run */
  runDir?: string;
}

/**
 * QEMU `-M microvm`: one VM per job (VmSandbox), booted once the workspace is built (its disk is
 * attached at boot), with every step image as a read-only disk. KVM when a test guest boots with it, else
 * TCG, which works everywhere but is slow, so `auto` takes this runtime only with KVM.
 */
export class QemuRuntime implements Runtime {
  readonly name = 'qemu' as const;
  readonly isolating = true;
  readonly imagesDir: string;
  readonly runDir: string;
  private templates: JobTemplates | undefined;

  constructor(private readonly deps: RuntimeDeps, options: QemuRuntimeOptions = {}) {
    this.imagesDir = options.imagesDir ?? guestImagesDir(deps.config.stateDir);
    this.runDir = options.runDir ?? vmRunDir(deps.config.stateDir);
  }

  async probe(): Promise<Availability> {
    const missing = ['qemu-system-x86_64', 'mkfs.ext4'].filter((b) => !findBinary(b));
    if (missing.length) return { available: false, reason: `missing ${missing.join(', ')} (apt-get install qemu-system-x86 e2fsprogs)` };
    const installed = installedGuestImage(this.imagesDir);
    if ('missing' in installed) return { available: false, reason: installed.missing };
    const { image } = installed;
    const choice = await this.accelerator(image);
    const facts = `${choice.accelerator} (${choice.reason}), guest kernel ${image.kernelRelease}, image sha256:${image.inputDigest.slice(0, 12)}`;
    return {
      available: true,
      reason: facts,
      ...(choice.accelerator === 'kvm' ? {} : { notForAuto: `QEMU without KVM (TCG) is slow, so auto does not pick it: ${facts}` }),
    };
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    const installed = installedGuestImage(this.imagesDir);
    if ('missing' in installed) throw new RuntimeUnavailableError(this.name, installed.missing);
    const { image } = installed;
    const choice = await this.accelerator(image);
    const { config } = this.deps;
    const templates = config.vmWarmStart === false ? undefined : (this.templates ??= new JobTemplates(this.runDir, config.vmPrefix));
    return new VmSandbox(this.deps, options, new QemuLauncher(image, choice, this.runDir, vmShape(config.limits), workspaceDiskBytes(config.limits), templates));
  }

  /** Kills and removes VMs whose executor died. */
  reapLeftovers(): Promise<string[]> {
    return reapOrphanedVms(this.runDir, this.deps.config.vmPrefix);
  }

  private accelerator(image: GuestImage): Promise<AcceleratorChoice> {
    return acceleratorOnce({ image, runDir: this.runDir });
  }
}

/**
 * QEMU microvm: disks by serial, the agent on virtio-serial, QEMU inside the job's network
 * namespace. With warm start (EXECUTOR_VM_WARM_START, the default) a job's VM is restored from a
 * saved idle guest of its shape (job-template.ts) in its own VM directory; when that fails the job
 * boots cold, with the reason in its boot log line.
 */
class QemuLauncher implements VmLauncher {
  readonly runtimeName = 'qemu' as const;
  readonly diskNaming = 'serial' as const;
  readonly description: string;
  private readonly bootTimeoutMs: number;

  constructor(
    private readonly image: GuestImage,
    private readonly choice: AcceleratorChoice,
    readonly runDir: string,
    readonly shape: { memoryMiB: number; cpus: number },
    private readonly workspaceBytes: number,
    private readonly templates: JobTemplates | undefined,
  ) {
    this.description = choice.accelerator;
    this.bootTimeoutMs = choice.accelerator === 'kvm' ? KVM_BOOT_TIMEOUT_MS : TCG_BOOT_TIMEOUT_MS;
  }

  async boot(r: VmBootRequest): Promise<JobVm> {
    if (!this.templates) return this.coldBoot(r);
    let why: string;
    try {
      return await this.restore(this.templates, r);
    } catch (err) {
      if (r.signal.aborted) throw err;
      why = err instanceof Error ? err.message.slice(0, 300) : String(err);
    }
    const vm = await this.coldBoot(r);
    vm.startedHow = `booted; warm start failed: ${why}`;
    return vm;
  }

  private async restore(templates: JobTemplates, r: VmBootRequest): Promise<QemuVm> {
    const [workspace, ...images] = r.disks;
    const disks = slotDisks(workspace!, images, await templates.imagePlaceholder());
    const shape = { image: this.image, accelerator: this.choice.accelerator, ...this.shape, workspaceBytes: this.workspaceBytes, kernelArgs: r.network.kernelArgs };
    // A failed restore removes only QEMU's files from the job's directory: its disks stay for the cold boot.
    return templates.restore(shape, { vmDir: r.vmDir, disks, network: r.network, signal: r.signal, bootTimeoutMs: this.bootTimeoutMs, ...confined(this.confinement(r)) });
  }

  private coldBoot(r: VmBootRequest): Promise<QemuVm> {
    return QemuVm.boot({
      image: this.image, runDir: this.runDir, vmDir: r.vmDir, accelerator: this.choice.accelerator, ...this.shape,
      disks: r.disks, signal: r.signal, network: r.network, bootTimeoutMs: this.bootTimeoutMs, ...confined(this.confinement(r)),
    });
  }

  /**
   * A job's QEMU runs as its own unprivileged id, chrooted into its VM directory, once its devices
   * are open. An executor that is not root starts an unprivileged QEMU already (and cannot switch ids).
   */
  private confinement(r: VmBootRequest): VmmIdentity | undefined {
    if (process.getuid?.() !== 0) return undefined;
    releaseVmmIdentity(this.runDir, r.vmDir); // a cold boot after a failed restore claims afresh
    return claimVmmIdentity(this.runDir, r.vmDir);
  }
}

const confined = (identity: VmmIdentity | undefined): { confine?: VmmIdentity } => (identity ? { confine: identity } : {});
