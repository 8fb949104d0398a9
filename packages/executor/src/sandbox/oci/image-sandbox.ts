import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { mergeEnv, resolveUser, type ResolvedUser } from '../../image/image-config.js';
import { ID_SHIFT } from '../../image/ids.js';
import type { ImageStore, PulledImage } from '../../image/pull.js';
import { createJobNetwork, type JobNetwork } from '../../network/job-network.js';
import { JobCgroup } from '../shared/cgroup.js';
import { JobFilesystem } from '../shared/job-filesystem.js';
import type { NetworkPolicy } from '../../network/policy.js';
import type { RuntimeDeps } from '../shared/host.js';
import type { JobLimits, Sandbox, SandboxOptions, StepIO, StepResult, StepSpec } from '../runtime.js';

/** What every image-based sandbox of one job shares: disk, cgroup, network, images. */
export interface JobResources {
  key: string;
  options: SandboxOptions;
  /** The runtime's job limits (RuntimeConfig), as the job's messages quote them. */
  limits: JobLimits;
  /** The runtime's network policy (RuntimeConfig). */
  policy: NetworkPolicy;
  images: ImageStore;
  fs: JobFilesystem;
  cgroup: JobCgroup;
  network: JobNetwork;
  stateDir: string;
  /** Host id of image id 0 in this job's rootfs and workspace. */
  idShift: number;
}

/** Everything a runtime needs to start one step. */
export interface StepLaunch {
  step: StepSpec;
  io: StepIO;
  image: PulledImage;
  user: ResolvedUser;
  /** The step's writable root (overlay over the image). */
  root: string;
  /** `NAME=value`, image Env then step env. */
  env: string[];
  /** Absolute in-sandbox paths. */
  cwd: string;
  script: string;
  /** Unique per job: `1`, `2`, … */
  stepName: string;
}

export interface LaunchResult {
  exitCode: number;
  command: string[];
}

/** A short, unique, name-safe key for a job attempt (netns, cgroup and directory names). */
export function jobKey(jobId: string): string {
  const safe = jobId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 20) || 'job';
  return `${safe}-${createHash('sha256').update(jobId).update(randomBytes(8)).digest('hex').slice(0, 6)}`;
}

/** How a runtime sets up one job's resources. */
export interface JobResourceSpec {
  deps: RuntimeDeps;
  /** Host id of image id 0: ID_SHIFT, or 0 for gVisor. */
  idShift?: number;
  /** The cgroup's limits when they differ from the job's (gVisor's host-side pids headroom). */
  cgroupLimits?: JobLimits;
}

/**
 * Sets up disk, cgroup and network for a job, side by side (they are independent and mostly wait on
 * processes); undoes what was made when any part fails.
 */
export async function prepareJobResources(options: SandboxOptions, spec: JobResourceSpec): Promise<JobResources> {
  const { config, images, uplink } = spec.deps;
  const { stateDir, limits, network: policy } = config;
  const idShift = spec.idShift ?? ID_SHIFT;
  const key = jobKey(options.jobId);
  const [jfs, cgroup, network] = await Promise.allSettled([
    JobFilesystem.create(stateDir, key, options.workspaceDir, limits.diskBytes, idShift),
    (async () => JobCgroup.create(key, spec.cgroupLimits ?? limits))(),
    createJobNetwork(key, policy, uplink, stateDir),
  ]);
  if (jfs.status === 'fulfilled' && cgroup.status === 'fulfilled' && network.status === 'fulfilled') {
    return { key, options, limits, policy, images, fs: jfs.value, cgroup: cgroup.value, network: network.value, stateDir, idShift };
  }
  if (network.status === 'fulfilled') await network.value.destroy().catch(() => {});
  if (cgroup.status === 'fulfilled') await cgroup.value.destroy().catch(() => {});
  if (jfs.status === 'fulfilled') await jfs.value.destroy().catch(() => {});
  throw [jfs, cgroup, network].find((r): r is PromiseRejectedResult => r.status === 'rejected')!.reason;
}

/**
 * The shared step lifecycle of the image runtimes (bwrap, oci, gvisor): pull the step's image,
 * give it a fresh writable root over the shared rootfs, run it as the image's user, then kill any
 * leftovers, explain abnormal ends (OOM, abort) and drop the writable layer.
 */
export abstract class ImageSandbox implements Sandbox {
  private steps = 0;
  private tornDown = false;
  /**
   * Images this job pulled, by reference: a later step with the same reference runs the same image
   * (resolved once per job, as the job's first use found it) without asking the registry again.
   */
  private readonly pulled = new Map<string, PulledImage>();
  /** Step roots being unmounted after their step returned; teardown waits for them. */
  private readonly releasing = new Set<Promise<void>>();

  constructor(protected readonly job: JobResources) {}

  get workspaceDir(): string {
    return this.job.options.workspaceDir;
  }

  protected abstract launch(launch: StepLaunch): Promise<LaunchResult>;

  async run(step: StepSpec, io: StepIO): Promise<StepResult> {
    if (this.tornDown) throw new Error('sandbox already torn down');
    const { limits } = this.job;
    const image = await this.image(step, io);
    const stepName = String(++this.steps);
    // The previous step's layer is gone before this one starts: the job's disk is all this step's again.
    await Promise.all([...this.releasing]);
    // The root first: it refuses an image whose /etc would lead the user lookup out of it.
    const { root, release } = await this.job.fs.stepRoot(image.rootfs, stepName, {
      resolvConf: this.job.network.resolvConf,
      hosts: '127.0.0.1\tlocalhost\n::1\tlocalhost\n',
    });
    try {
      const user = resolveUser(image.rootfs, image.config.user);
      await this.job.fs.ownWorkspace(user.uid, user.gid);
      this.job.cgroup.resetPeak();
      const before = this.job.cgroup.memoryEvents();
      const pidsBefore = this.job.cgroup.pidsLimitHits();
      const result = await this.launch({
        step,
        io,
        image,
        user,
        root,
        env: mergeEnv(image.config.env, step.env, user.home),
        cwd: path.posix.join('/data', step.dir),
        script: path.posix.join('/data', step.scriptPath),
        stepName,
      });
      await this.job.cgroup.killAll();
      const after = this.job.cgroup.memoryEvents();
      let failure: string | undefined;
      const oom = after.oomKills > before.oomKills || (result.exitCode === 137 && after.peakAtLimit);
      if (io.signal.aborted) failure = `killed: ${abortReason(io.signal)}`;
      else if (oom) failure = `killed: out of memory (limit ${Math.round(limits.memoryBytes / 1048576)} MiB)`;
      else if (result.exitCode !== 0 && this.job.cgroup.pidsLimitHits() > pidsBefore) failure = `process limit reached (${limits.pids} processes)`;
      return { exitCode: result.exitCode, command: result.command, ...(failure ? { failure } : {}) };
    } finally {
      await this.job.cgroup.killAll();
      this.releaseLater(release);
    }
  }

  private async image(step: StepSpec, io: StepIO): Promise<PulledImage> {
    const known = this.pulled.get(step.image);
    if (known && (await this.job.images.reuse(known))) return known;
    const { options } = this.job;
    const image = await this.job.images.pull(step.image, { auth: options.dockerAuth, progress: io.progress ?? options.progress, signal: io.signal, idShift: this.job.idShift });
    this.pulled.set(step.image, image);
    return image;
  }

  /**
   * Unmounts and removes a finished step's root after the step's result is returned (while the
   * caller uploads the step's log): nothing runs in it any more (the job's cgroup is empty), the
   * next step and teardown wait for it. A failed release is left to teardown's sweep of leftover
   * step roots.
   */
  private releaseLater(release: () => Promise<void>): void {
    const pending: Promise<void> = release()
      .catch(() => {})
      .finally(() => this.releasing.delete(pending));
    this.releasing.add(pending);
  }

  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    // Processes first (nothing may keep the job's mounts busy), then network and disk side by side.
    await this.job.cgroup.destroy().catch(() => {});
    await Promise.all([...this.releasing]);
    const network = this.job.network.destroy().catch(() => {});
    try {
      await this.job.fs.destroy();
    } finally {
      await network;
    }
  }
}

/** The words for why a step was stopped: "time limit exceeded", or the reason it was aborted with. */
export function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason.name === 'TimeoutError' ? 'time limit exceeded' : reason.message;
  if (typeof reason === 'string') return reason;
  return 'cancelled';
}

/** A directory only root can enter (runtime state: it holds every step's configuration and env). */
export { privateDir } from '../../image/private-dir.js';

/** Writes a file only root can read: a step's config.json or env carries the job's secrets. */
export async function writePrivateFile(file: string, content: string): Promise<void> {
  await fs.writeFile(file, content, { mode: 0o600 });
  await fs.chmod(file, 0o600);
}

/** `'a b'` → `'a b'` quoted for /bin/sh. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
