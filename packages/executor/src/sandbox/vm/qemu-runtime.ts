import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { mergeEnv, resolveUser } from '../../image/image-config.js';
import { openStepLog } from '../../logs/logged-command.js';
import type { PulledImage } from '../../image/pull.js';
import { prepareWorkspaceOnHost, type WorkspaceRequest } from '../../workspace/prepare.js';
import { createJobNetwork, type JobNetwork } from '../../network/job-network.js';
import { abortReason, jobKey } from '../oci/image-sandbox.js';
import { findBinary, type RuntimeDeps } from '../shared/host.js';
import { RuntimeUnavailableError, type Availability, type JobLimits, type Runtime, type Sandbox, type SandboxOptions, type StepIO, type StepResult, type StepSpec } from '../runtime.js';
import { acceleratorOnce, type AcceleratorChoice } from './accelerator.js';
import { guestImagesDir, installedGuestImage, type GuestImage } from './guest-image.js';
import { imageSerial, setupScript, stepScript, WORKSPACE_SERIAL } from './guest-step.js';
import { vmRunDir } from './install.js';
import { NETWORK_RECORD_FILE, reapOrphanedVms } from './janitor.js';
import { createVmDir, QemuVm, type VmDisk } from './qemu.js';
import { imageRootDisk, makeWorkspaceDisk } from './vm-disks.js';
import { attachVmNetwork, type VmNetwork } from './vm-network.js';

const MiB = 1024 * 1024;
/** Below this the guest kernel, agent and a step's scratch space do not fit. */
export const MIN_VM_MEMORY_MIB = 256;
/** EXECUTOR_JOB_MEMORY=0 (unbounded) still needs a number for QEMU. */
export const UNBOUNDED_VM_MEMORY_MIB = 2048;
/** Distinct step images one job may use: each is a disk attached at boot (microvm has no hotplug). */
export const MAX_JOB_IMAGES = 8;
/** EXECUTOR_FIRECRACKER_DISK_SPACE=0 (unbounded): the sparse workspace disk's size. */
const UNBOUNDED_DISK_BYTES = 20 * 1024 * MiB;
/** A guest that has not said READY by then under TCG on a loaded host is not coming up. */
const TCG_BOOT_TIMEOUT_MS = 120_000;
const KVM_BOOT_TIMEOUT_MS = 30_000;
/** The agent's own wall time when the runtime is given no job deadline. */
const DEFAULT_STEP_WALL_SECONDS = 30 * 60;

export class QemuJobError extends SandfleetError {}

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
 * QEMU `-M microvm`: one VM per job, booted once the workspace is built (its disk is attached at
 * boot), with every step image as a read-only disk. KVM when a test guest boots with it, else
 * TCG, which works everywhere but is slow, so `auto` takes this runtime only with KVM.
 */
export class QemuRuntime implements Runtime {
  readonly name = 'qemu' as const;
  readonly isolating = true;
  readonly imagesDir: string;
  readonly runDir: string;

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
    return new QemuSandbox(this.deps, options, image, choice, this.runDir);
  }

  /** Kills and removes VMs whose executor died. */
  reapLeftovers(): Promise<string[]> {
    return reapOrphanedVms(this.runDir);
  }

  private accelerator(image: GuestImage): Promise<AcceleratorChoice> {
    return acceleratorOnce({ image, runDir: this.runDir });
  }
}

/** An env name that `env` would take for an option, or that is no name, is not passed on. */
const PASSABLE_ENV = /^[A-Za-z_][A-Za-z0-9_.]*=/;

class QemuSandbox implements Sandbox {
  private vm: QemuVm | undefined;
  private vmDir: string | undefined;
  private jobNetwork: JobNetwork | undefined;
  private vmNetwork: VmNetwork | undefined;
  private images: PulledImage[] = [];
  private readonly imageIndex = new Map<string, number>();
  private steps = 0;
  private tornDown = false;
  private readonly shape: { memoryMiB: number; cpus: number };
  private readonly deadline: number | undefined;

  constructor(
    private readonly deps: RuntimeDeps,
    private readonly options: SandboxOptions,
    private readonly image: GuestImage,
    private readonly choice: AcceleratorChoice,
    private readonly runDir: string,
  ) {
    this.shape = vmShape(deps.config.limits);
    const max = deps.config.maxJobRuntimeMs;
    this.deadline = max ? Date.now() + max : undefined;
  }

  get workspaceDir(): string {
    return this.options.workspaceDir;
  }

  /**
   * The host-side preparation as for every runtime (the clone goes through the git proxy, so the
   * job token stays on the host), then the workspace packed into its own ext4 disk, the step
   * images pulled and turned into read-only disks, and the VM booted with all of them.
   */
  async prepareWorkspace(request: WorkspaceRequest, signal: AbortSignal): Promise<string[]> {
    const scripts = await prepareWorkspaceOnHost(this.workspaceDir, request, signal);
    const entry = openStepLog(request.ctx, 'setup.qemu.boot', []);
    try {
      await this.boot(request, signal, (line) => entry.writeLine(line));
    } catch (err) {
      entry.writeLine(err instanceof Error ? err.message : String(err));
      await entry.finish(1).catch(() => {});
      throw err;
    }
    await entry.finish(0);
    return scripts;
  }

  private async boot(request: WorkspaceRequest, signal: AbortSignal, progress: (line: string) => void): Promise<void> {
    const refs = [...new Set((request.job.dockerSteps ?? []).map((s) => s.image))];
    if (refs.length > MAX_JOB_IMAGES) throw new QemuJobError(`this job uses ${refs.length} images; the qemu runtime takes at most ${MAX_JOB_IMAGES} per job`);
    const { images } = this.deps;
    const disks: VmDisk[] = [];
    for (const [i, ref] of refs.entries()) {
      const pulled = await images.pull(ref, { auth: this.options.dockerAuth, progress, signal, idShift: 0 });
      this.images.push(pulled);
      this.imageIndex.set(ref, i);
      disks.push({ path: await imageRootDisk(images.stateDir, pulled.rootfs), serial: imageSerial(i), readOnly: true });
    }
    if (signal.aborted) throw signal.reason;
    try {
      await this.bootVm(refs.length, disks, signal, progress);
    } catch (err) {
      await this.release();
      throw err;
    }
  }

  /**
   * The VM's directory, the job network as for every runtime (policy `none`: a namespace with only
   * lo), the VM's tap in it, the workspace disk, then the VM (QEMU inside that namespace) with its disks mounted.
   */
  private async bootVm(imageCount: number, disks: VmDisk[], signal: AbortSignal, progress: (line: string) => void): Promise<void> {
    const { config, uplink } = this.deps;
    this.vmDir = createVmDir(this.runDir);
    this.jobNetwork = await createJobNetwork(jobKey(this.options.jobId), config.network, uplink, config.stateDir);
    // Recorded at once (QemuVm.boot writes the same again): an executor killed while the disk is
    // being made still leaves the janitor a record of the network to remove.
    fs.writeFileSync(path.join(this.vmDir, NETWORK_RECORD_FILE), `${JSON.stringify(this.jobNetwork.record)}\n`, { mode: 0o600 });
    this.vmNetwork = await attachVmNetwork(this.jobNetwork);
    const workspaceDisk = path.join(this.vmDir, 'workspace.ext4');
    await makeWorkspaceDisk(this.workspaceDir, workspaceDisk, config.limits.diskBytes > 0 ? config.limits.diskBytes : UNBOUNDED_DISK_BYTES);
    disks.unshift({ path: workspaceDisk, serial: WORKSPACE_SERIAL, readOnly: false });
    const { accelerator } = this.choice;
    this.vm = await QemuVm.boot({
      image: this.image, runDir: this.runDir, vmDir: this.vmDir, accelerator, ...this.shape, disks, signal, network: this.vmNetwork,
      bootTimeoutMs: accelerator === 'kvm' ? KVM_BOOT_TIMEOUT_MS : TCG_BOOT_TIMEOUT_MS,
    });
    const setup = await this.vm.run(setupScript(imageCount), 60);
    if (setup.exitCode !== 0) throw new QemuJobError(`the VM could not mount its disks (exit ${setup.exitCode}): ${setup.stderr.trim().slice(-500)}`);
    progress(`microVM up in ${this.vm.bootMs} ms: ${accelerator}, ${this.shape.cpus} vCPU, ${this.shape.memoryMiB} MiB, ${imageCount} image disk(s), network ${config.network}`);
  }

  async run(step: StepSpec, io: StepIO): Promise<StepResult> {
    if (this.tornDown) throw new Error('sandbox already torn down');
    const vm = this.vm;
    if (!vm) throw new QemuJobError('the VM is not running: its workspace was not prepared');
    const index = this.imageIndex.get(step.image);
    if (index === undefined) throw new QemuJobError(`image ${step.image} was not among the job's step images at boot`);
    const image = this.images[index]!;
    const user = resolveUser(image.rootfs, image.config.user);
    const script = path.posix.join('/data', step.scriptPath);
    const command = ['/bin/sh', script];
    const wallSeconds = this.deadline === undefined ? DEFAULT_STEP_WALL_SECONDS : Math.max(1, Math.ceil((this.deadline - Date.now()) / 1000));
    const text = stepScript({
      name: String(++this.steps),
      imageIndex: index,
      uid: user.uid,
      gid: user.gid,
      env: mergeEnv(image.config.env, step.env, user.home).filter((p) => PASSABLE_ENV.test(p)),
      cwd: path.posix.join('/data', step.dir),
      script,
      scratchBytes: Math.floor((this.shape.memoryMiB * MiB) / 4),
    });
    // A cancel or the job's deadline stops the whole VM: nothing else of the job is left to run.
    const onAbort = () => void vm.teardown();
    io.signal.addEventListener('abort', onAbort);
    try {
      if (io.signal.aborted) onAbort();
      const r = await vm.run(text, wallSeconds, (stream, chunk) => (stream === 'stdout' ? io.onStdout(chunk) : io.onStderr(chunk)));
      let failure: string | undefined;
      if (r.timedOut) failure = `killed: time limit exceeded (${wallSeconds} s)`;
      else if (r.oomKilled) failure = `killed: out of memory (limit ${this.shape.memoryMiB} MiB, the VM's memory)`;
      return { exitCode: r.exitCode, command, ...(failure ? { failure } : {}) };
    } catch (err) {
      if (io.signal.aborted) return { exitCode: 137, command, failure: `killed: ${abortReason(io.signal)}` };
      throw err;
    } finally {
      io.signal.removeEventListener('abort', onAbort);
    }
  }

  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    await this.release();
  }

  /** The VM first (a live QEMU holds the tap and keeps the namespace in use), then its tap, then the job network. */
  private async release(): Promise<void> {
    const { vm, vmNetwork, jobNetwork, vmDir } = this;
    this.vm = this.vmNetwork = this.jobNetwork = this.vmDir = undefined;
    await vm?.teardown().catch(() => {});
    await vmNetwork?.destroy().catch(() => {});
    await jobNetwork?.destroy().catch(() => {});
    if (vmDir) fs.rmSync(vmDir, { recursive: true, force: true });
  }
}
