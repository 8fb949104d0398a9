import fs from 'node:fs';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { mergeEnv, resolveUser } from '../../image/image-config.js';
import { openStepLog } from '../../logs/logged-command.js';
import type { PulledImage } from '../../image/pull.js';
import { prepareWorkspaceOnHost, type WorkspaceRequest } from '../../workspace/prepare.js';
import { createJobNetwork, type JobNetwork } from '../../network/job-network.js';
import { abortReason, jobKey } from '../oci/image-sandbox.js';
import type { RuntimeDeps } from '../shared/host.js';
import type { JobLimits, Sandbox, SandboxOptions, StepIO, StepResult, StepSpec } from '../runtime.js';
import type { OutputListener, StepResult as AgentStepResult } from './agent-client.js';
import { imageSerial, setupScript, stepScript, WORKSPACE_SERIAL, type DiskNaming } from './guest-step.js';
import { NETWORK_RECORD_FILE } from './janitor.js';
import { createVmDir, type VmDisk } from './qemu.js';
import { imageRootDisk, makeWorkspaceDisk } from './vm-disks.js';
import { attachVmNetwork, type VmNetwork } from './vm-network.js';

/**
 * A job in one microVM, whichever VMM runs it: the workspace is prepared on the host and packed
 * into its own ext4 disk, every step image becomes a read-only disk, the VM boots with all of them
 * inside the job's network namespace, and each step goes to the guest agent. The VMM-specific part
 * (how a VM is started, how the guest names its disks) is a VmLauncher.
 */
export class VmJobError extends SandfleetError {}

const MiB = 1024 * 1024;
/** Distinct step images one job may use: each is a disk attached at boot (no hotplug). */
export const MAX_JOB_IMAGES = 8;
/** EXECUTOR_FIRECRACKER_DISK_SPACE=0 (unbounded): the sparse workspace disk's size. */
const UNBOUNDED_DISK_BYTES = 20 * 1024 * MiB;
/** The agent's own wall time when the runtime is given no job deadline. */
const DEFAULT_STEP_WALL_SECONDS = 30 * 60;

/** The workspace disk's size: EXECUTOR_FIRECRACKER_DISK_SPACE, or a large sparse one when that is 0. */
export function workspaceDiskBytes(limits: JobLimits): number {
  return limits.diskBytes > 0 ? limits.diskBytes : UNBOUNDED_DISK_BYTES;
}

/** A booted VM whose agent answers. */
export interface JobVm {
  /** Milliseconds from starting the VMM to the agent's READY. */
  readonly bootMs: number;
  /** How the guest came up ("booted", "restored from a saved idle guest", …). */
  readonly startedHow: string;
  run(script: string, wallSeconds: number, onOutput?: OutputListener): Promise<AgentStepResult>;
  /** Stops the VMM and removes its directory. */
  teardown(): Promise<void>;
}

export interface VmBootRequest {
  /** The VM's own directory (made by createVmDir), holding its disks. */
  vmDir: string;
  /** The workspace disk first, then the step images' disks in image order. */
  disks: VmDisk[];
  network: VmNetwork;
  signal: AbortSignal;
}

/** What differs between VMMs. */
export interface VmLauncher {
  readonly runtimeName: 'qemu' | 'firecracker';
  /** Parent of the per-VM directories (the janitor's hunting ground). */
  readonly runDir: string;
  readonly shape: { memoryMiB: number; cpus: number };
  readonly diskNaming: DiskNaming;
  /** For the boot log line, e.g. "tcg" or "firecracker, jailed". */
  readonly description: string;
  boot(request: VmBootRequest): Promise<JobVm>;
}

/** An env name that `env` would take for an option, or that is no name, is not passed on. */
const PASSABLE_ENV = /^[A-Za-z_][A-Za-z0-9_.]*=/;

export class VmSandbox implements Sandbox {
  private vm: JobVm | undefined;
  private vmDir: string | undefined;
  private jobNetwork: JobNetwork | undefined;
  private vmNetwork: VmNetwork | undefined;
  private images: PulledImage[] = [];
  private readonly imageIndex = new Map<string, number>();
  private steps = 0;
  private tornDown = false;
  private readonly deadline: number | undefined;

  constructor(private readonly deps: RuntimeDeps, private readonly options: SandboxOptions, private readonly launcher: VmLauncher) {
    const max = deps.config.maxJobRuntimeMs;
    this.deadline = max ? Date.now() + max : undefined;
  }

  get workspaceDir(): string {
    return this.options.workspaceDir;
  }

  /**
   * The host-side preparation as for every runtime (the clone goes through the git proxy, so the
   * job token stays on the host), then the disks and the VM.
   */
  async prepareWorkspace(request: WorkspaceRequest, signal: AbortSignal): Promise<string[]> {
    const scripts = await prepareWorkspaceOnHost(this.workspaceDir, request, signal);
    const entry = openStepLog(request.ctx, `setup.${this.launcher.runtimeName}.boot`, []);
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
    if (refs.length > MAX_JOB_IMAGES) throw new VmJobError(`this job uses ${refs.length} images; the ${this.launcher.runtimeName} runtime takes at most ${MAX_JOB_IMAGES} per job`);
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
      await this.bootVm(disks, signal, progress);
    } catch (err) {
      await this.release();
      throw err;
    }
  }

  /**
   * The VM's directory, the job network as for every runtime (policy `none`: a namespace with only
   * lo), the VM's tap in it, the workspace disk, then the VM with its disks mounted.
   */
  private async bootVm(imageDisks: VmDisk[], signal: AbortSignal, progress: (line: string) => void): Promise<void> {
    const { config, uplink } = this.deps;
    const { launcher } = this;
    this.vmDir = createVmDir(launcher.runDir, this.deps.config.vmPrefix);
    this.jobNetwork = await createJobNetwork(jobKey(this.options.jobId), config.network, uplink, config.stateDir);
    // Recorded at once: an executor killed while the disk is being made still leaves the janitor
    // a record of the network to remove.
    fs.writeFileSync(path.join(this.vmDir, NETWORK_RECORD_FILE), `${JSON.stringify(this.jobNetwork.record)}\n`, { mode: 0o600 });
    this.vmNetwork = await attachVmNetwork(this.jobNetwork);
    const workspaceDisk = path.join(this.vmDir, 'workspace.ext4');
    await makeWorkspaceDisk(this.workspaceDir, workspaceDisk, workspaceDiskBytes(config.limits));
    const disks = [{ path: workspaceDisk, serial: WORKSPACE_SERIAL, readOnly: false }, ...imageDisks];
    // Sizes first: a launcher may move a disk of the VM's own (into a jail).
    const sizes = disks.map((d) => fs.statSync(d.path).size);
    this.vm = await launcher.boot({ vmDir: this.vmDir, disks, network: this.vmNetwork, signal });
    const setup = await this.vm.run(setupScript(imageDisks.length, launcher.diskNaming, sizes), 60);
    if (setup.exitCode !== 0) throw new VmJobError(`the VM could not mount its disks (exit ${setup.exitCode}): ${setup.stderr.trim().slice(-500)}`);
    const { cpus, memoryMiB } = launcher.shape;
    progress(`microVM up in ${this.vm.bootMs} ms (${this.vm.startedHow}): ${launcher.description}, ${cpus} vCPU, ${memoryMiB} MiB, ${imageDisks.length} image disk(s), network ${config.network}`);
  }

  async run(step: StepSpec, io: StepIO): Promise<StepResult> {
    if (this.tornDown) throw new Error('sandbox already torn down');
    const vm = this.vm;
    if (!vm) throw new VmJobError('the VM is not running: its workspace was not prepared');
    const index = this.imageIndex.get(step.image);
    if (index === undefined) throw new VmJobError(`image ${step.image} was not among the job's step images at boot`);
    const image = this.images[index]!;
    const user = resolveUser(image.rootfs, image.config.user);
    const script = path.posix.join('/data', step.scriptPath);
    const command = ['/bin/sh', script];
    const wallSeconds = this.deadline === undefined ? DEFAULT_STEP_WALL_SECONDS : Math.max(1, Math.ceil((this.deadline - Date.now()) / 1000));
    const { memoryMiB } = this.launcher.shape;
    const text = stepScript({
      name: String(++this.steps),
      imageIndex: index,
      uid: user.uid,
      gid: user.gid,
      env: mergeEnv(image.config.env, step.env, user.home).filter((p) => PASSABLE_ENV.test(p)),
      cwd: path.posix.join('/data', step.dir),
      script,
      scratchBytes: Math.floor((memoryMiB * MiB) / 4),
    });
    // A cancel or the job's deadline stops the whole VM: nothing else of the job is left to run.
    const onAbort = () => void vm.teardown();
    io.signal.addEventListener('abort', onAbort);
    try {
      if (io.signal.aborted) onAbort();
      const r = await vm.run(text, wallSeconds, (stream, chunk) => (stream === 'stdout' ? io.onStdout(chunk) : io.onStderr(chunk)));
      let failure: string | undefined;
      if (r.timedOut) failure = `killed: time limit exceeded (${wallSeconds} s)`;
      else if (r.oomKilled) failure = `killed: out of memory (limit ${memoryMiB} MiB, the VM's memory)`;
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

  /** The VM first (a live VMM holds the tap and keeps the namespace in use), then its tap, then the job network. */
  private async release(): Promise<void> {
    const { vm, vmNetwork, jobNetwork, vmDir } = this;
    this.vm = this.vmNetwork = this.jobNetwork = this.vmDir = undefined;
    await vm?.teardown().catch(() => {});
    await vmNetwork?.destroy().catch(() => {});
    await jobNetwork?.destroy().catch(() => {});
    if (vmDir) fs.rmSync(vmDir, { recursive: true, force: true });
  }
}
