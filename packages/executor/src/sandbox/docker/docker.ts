import fs from 'node:fs/promises';
import path from 'node:path';
import type { DockerAuthConfig } from '@sandfleet/protocol';
import { resolveUser } from '../../image/image-config.js';
import type { ImageStore } from '../../image/pull.js';
import { createJobNetwork, type JobNetwork } from '../../network/job-network.js';
import type { Uplink } from '../../network/uplink.js';
import { DockerCli, DockerCommandError } from './cli.js';
import { describeDaemon, inspectDaemon, type DockerDaemon } from './daemon.js';
import { envFileText, withEnvFile } from './env-file.js';
import { daemonImageId, loadImage } from './image-load.js';
import { findBinary, type RuntimeDeps } from '../shared/host.js';
import { abortReason, jobKey } from '../oci/image-sandbox.js';
import { JobFilesystem } from '../shared/job-filesystem.js';
import { RuntimeUnavailableError, type Availability, type Runtime, type RuntimeConfig, type Sandbox, type SandboxOptions, type StepIO, type StepResult, type StepSpec } from '../runtime.js';
import { SandfleetError } from '@sandfleet/protocol';

/**
 * Docker, as Sourcegraph's docker runtime does it: one container per step with the
 * workspace at /data, `-w /data/<dir>`, `--entrypoint /bin/sh <image> /data/<script>`, cpu, memory
 * and pids limits, and a per-job `--config` directory. Chosen only explicitly.
 *
 * Differences from Sourcegraph's argv, and why:
 * - `create` + `start --attach` instead of `run --rm`: between the two the container's writable
 *   layer is moved onto the job's disk (below), and after the step it is inspected
 *   (State.OOMKilled) before it is removed;
 * - the job's disk limit covers the root too: Docker's overlay2 writable layer is not limited by
 *   anything (`--storage-opt size=` needs xfs with project quotas — not in our kernels, which lack
 *   CONFIG_XFS_QUOTA — or the btrfs/zfs drivers), so the
 *   created container's layer directory is bind-mounted from the job's loop disk, which also holds
 *   /data — one budget for both, as in the other runtimes, and the whole root stays writable
 *   (a `--read-only` root with tmpfs would break images that write to /etc or $HOME, and tmpfs is
 *   charged to the memory limit);
 * - `--user uid:gid` resolved by us from the image, so the workspace is owned by exactly the ids the
 *   step runs as, and a step that would be host root is refused before anything runs (see
 *   RootWithoutUsernsError);
 * - `--network container:<holder>`: Docker cannot join a network namespace by path, so the first
 *   step starts a holder container whose namespace we wire to the job's router exactly like the
 *   other runtimes; `none` jobs use `--network none`;
 * - no `docker pull`: the executor's own puller fetches the image (registry address policy, size
 *   budgets, the job's credentials, mirrors for any registry, digest and diff_id checks) and hands
 *   it to the daemon with `docker load` (image-load.ts); steps then run by image id, the config
 *   digest we verified, never by a name the daemon resolves. The manifest is fetched with the
 *   job's credentials every time, so a private image the daemon already has is only used by a job
 *   that may pull it; its layers are not fetched again;
 * - the step's env through `--env-file` (a 0600 file, removed after create), never `-e` in argv
 *   (env-file.ts).
 */
export class DockerRuntime implements Runtime {
  readonly name = 'docker' as const;
  readonly isolating = true;
  private readonly cli: DockerCli;

  /** `dockerHost` overrides the executor's DOCKER_HOST (tests start their own daemon). */
  constructor(private readonly deps: RuntimeDeps, dockerHost = deps.host.dockerHost) {
    this.cli = new DockerCli(dockerHost, deps.host.home);
  }

  /** The environment docker commands run with (PATH, HOME, DOCKER_HOST). */
  env(): Record<string, string> {
    return this.cli.env();
  }

  async probe(): Promise<Availability> {
    if (!findBinary('docker')) return { available: false, reason: 'the docker CLI is not installed (apt-get install docker.io; or executor install docker)' };
    if (process.getuid?.() !== 0) return { available: false, reason: 'the executor must run as root (workspace disk mounts, network namespaces)' };
    let daemon: DockerDaemon;
    try {
      daemon = await inspectDaemon(this.cli);
    } catch (err) {
      if (err instanceof DockerCommandError) return { available: false, reason: `no Docker daemon answers${this.cli.host ? ` at ${this.cli.host}` : ''} (${err.stderr.trim().split('\n').pop()})` };
      return { available: false, reason: err instanceof Error ? err.message : String(err) };
    }
    const why = unusableDaemon(daemon, this.deps.config.limits.diskBytes);
    if (why) return { available: false, reason: why };
    return { available: true, reason: `${describeDaemon(daemon)}${this.deps.config.limits.diskBytes > 0 ? ', writable layers on the job disk' : ''}` };
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    // Asked per job: the daemon may have been restarted with another configuration meanwhile.
    let daemon: DockerDaemon;
    try {
      daemon = await inspectDaemon(this.cli);
    } catch (err) {
      throw new RuntimeUnavailableError('docker', err instanceof Error ? err.message : String(err));
    }
    const { limits } = this.deps.config;
    const why = unusableDaemon(daemon, limits.diskBytes);
    if (why) throw new RuntimeUnavailableError('docker', why);
    const key = jobKey(options.jobId);
    // Image id 0 is host id `remap.uid` under userns-remap, and host root without it.
    const jfs = await JobFilesystem.create(this.deps.config.stateDir, key, options.workspaceDir, limits.diskBytes, daemon.remap?.uid ?? 0);
    try {
      // An empty CLI config of the job's own: the executor's ~/.docker (credential helpers, proxies)
      // is not the job's. Registry credentials stay in memory: our puller uses them, the CLI never pulls.
      const configDir = path.join(jfs.jobDir, 'docker-config');
      await fs.mkdir(configDir, { mode: 0o700 });
      const auth = options.dockerAuth;
      return new DockerSandbox({ cli: this.cli.withConfig(configDir), daemon, key, options, fs: jfs, auth, config: this.deps.config, uplink: this.deps.uplink, images: this.deps.images });
    } catch (err) {
      await jfs.destroy();
      throw err;
    }
  }
}

/** Why jobs cannot run on this daemon with these limits, or undefined. */
export function unusableDaemon(daemon: DockerDaemon, diskBytes: number): string | undefined {
  if (daemon.remap && daemon.remap.uid !== daemon.remap.gid) {
    return `the Docker daemon maps container root to host uid ${daemon.remap.uid} but gid ${daemon.remap.gid}; give its remap user sub-uid and sub-gid ranges that start at the same id`;
  }
  if (diskBytes > 0 && daemon.storageDriver !== 'overlay2') {
    return `the Docker daemon uses the ${daemon.storageDriver} storage driver; the job disk limit is enforced by putting each step's overlay2 layer on the job's disk, so use overlay2 (or run without a disk limit: EXECUTOR_FIRECRACKER_DISK_SPACE=0)`;
  }
  return undefined;
}

/**
 * Without userns-remap, container root is host root, and no step may run as host root. Such steps
 * are refused rather than run as some other uid: an image built to run as root (package installs,
 * writes to /etc or /root) would then fail later in confusing ways, while this error names the fix —
 * with userns-remap (`executor install docker`) root images run as they are, as unprivileged host
 * ids. gid 0 is refused too: it is host root's group and owns many host files.
 */
export class RootWithoutUsernsError extends SandfleetError {
  constructor(readonly image: string, readonly uid: number, readonly gid: number) {
    super(`refusing to run ${image} as uid ${uid}, gid ${gid}: the Docker daemon does not remap users (no userns-remap), so root in the container would be root on the host. `
      + 'Set up userns-remap (`executor install docker`, then restart dockerd) or use an image whose USER is neither root nor in group 0.');
  }
}

/** Exit code reported for a step stopped before its container started, as if it had been killed. */
const KILLED_EXIT_CODE = 137;

/** A container's layer directory, bound from the job's disk until `release`. */
interface BoundLayer {
  dir: string;
  release: () => Promise<void>;
}

/** Waits up to `timeoutMs` for nothing to be mounted at `mountPoint`; false if something still is. */
async function mountGone(mountPoint: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
    if (!mountinfo.split('\n').some((l) => l.split(' ')[4] === mountPoint)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface DockerJob {
  cli: DockerCli;
  daemon: DockerDaemon;
  key: string;
  options: SandboxOptions;
  fs: JobFilesystem;
  auth: DockerAuthConfig | undefined;
  config: RuntimeConfig;
  uplink: Uplink;
  images: ImageStore;
}

class DockerSandbox implements Sandbox {
  private steps = 0;
  private lookups = 0;
  private tornDown = false;
  private holder: string | undefined;
  private network: JobNetwork | undefined;
  /** Every container this sandbox asked for, added before asking, so teardown removes it whatever happened. */
  private readonly containers = new Set<string>();
  /** Image reference → the image id (verified config digest) it was pulled as for this job. */
  private readonly pulled = new Map<string, string>();
  private readonly users = new Map<string, { uid: number; gid: number }>();

  constructor(private readonly job: DockerJob) {}

  get workspaceDir(): string {
    return this.job.options.workspaceDir;
  }

  async run(step: StepSpec, io: StepIO): Promise<StepResult> {
    if (this.tornDown) throw new Error('sandbox already torn down');
    const name = `sf-${this.job.key}-${++this.steps}`;
    let layer: BoundLayer | undefined;
    try {
      let command: string[];
      try {
        ({ command, layer } = await this.createStep(step, io, name));
        io.signal.throwIfAborted();
      } catch (err) {
        // An abort during set-up (pull, holder, create) is the same time limit or cancellation as
        // one during the step; the set-up failure it causes is not the story.
        if (io.signal.aborted) return { exitCode: KILLED_EXIT_CODE, command: [], failure: `killed: ${abortReason(io.signal)}` };
        throw err;
      }
      return await this.start(name, command, io);
    } finally {
      if (layer) {
        // dockerd mounts the container's root at <layer>/merged, inside our bind, until it has
        // cleaned up after the container; only then can the bind be unmounted rather than detached.
        // After an abort (or if the root stays mounted) the container is removed first instead,
        // which also settles a start still on its way; dockerd unmounts our bind as it deletes the
        // layer directory (seen with 20.10), and release() unmounts whatever is left and deletes
        // our copy. Should that removal fail on the bind, the one below succeeds once it is gone.
        if (io.signal.aborted || !(await mountGone(path.join(layer.dir, 'merged'), 10_000))) await this.remove(name).catch(() => {});
        await layer.release();
      }
      await this.remove(name).catch(() => {}); // kept in `containers`: teardown tries again and reports
    }
  }

  /** Everything up to a created, not yet started step container. */
  private async createStep(step: StepSpec, io: StepIO, name: string): Promise<{ command: string[]; layer?: BoundLayer }> {
    const { limits } = this.job.config;
    envFileText(step.env); // refused before anything is pulled or created
    const imageId = await this.pull(step.image, io);
    const user = await this.stepUser(imageId);
    if (!this.job.daemon.remap && (user.uid === 0 || user.gid === 0)) throw new RootWithoutUsernsError(step.image, user.uid, user.gid);
    await this.job.fs.ownWorkspace(user.uid, user.gid);
    io.signal.throwIfAborted();
    const network = await this.networkArgs(imageId);
    io.signal.throwIfAborted();
    const args = [
      // The image is on the daemon by its id (pull above); the CLI must never try a registry itself.
      'create', '--pull', 'never', '--name', name,
      '--user', `${user.uid}:${user.gid}`,
      ...network,
      ...(limits.cpus > 0 ? ['--cpus', String(limits.cpus)] : []),
      ...(limits.memoryBytes > 0 ? ['--memory', String(limits.memoryBytes), '--memory-swap', String(limits.memoryBytes)] : []),
      ...(limits.pids > 0 ? ['--pids-limit', String(limits.pids)] : []),
      '--security-opt', 'no-new-privileges',
      // Without userns-remap the step is never root (refused above), so capabilities are of no use
      // to it; dropping them all removes what a kernel bug could make of them.
      ...(this.job.daemon.remap ? [] : ['--cap-drop', 'ALL']),
      '-v', `${this.job.fs.dataDir}:/data`,
      '-w', path.posix.join('/data', step.dir),
    ];
    const command = await withEnvFile(path.join(this.job.fs.jobDir, 'docker-env'), name, step.env, async (envFile) => {
      const create = [...args, '--env-file', envFile, '--entrypoint', '/bin/sh', imageId, path.posix.join('/data', step.scriptPath)];
      this.containers.add(name);
      await this.job.cli.must(create);
      return this.job.cli.argv(create);
    });
    if (limits.diskBytes === 0) return { command };
    const dir = await this.layerDir(name);
    const { release } = await this.job.fs.bindOver(dir, name);
    return { command, layer: { dir, release } };
  }

  /**
   * Starts the created step and waits for it. An abort kills the container right away (stopping
   * the attached CLI alone would leave it running) and run() then removes it.
   */
  private async start(name: string, command: string[], io: StepIO): Promise<StepResult> {
    const { limits } = this.job.config;
    const kill = () => void this.job.cli.try(['kill', name]).catch(() => {});
    io.signal.addEventListener('abort', kill, { once: true });
    try {
      const attached = await this.job.cli.stream(['start', '--attach', name], { signal: io.signal, killGraceMs: 5000, onStdout: io.onStdout, onStderr: io.onStderr });
      if (io.signal.aborted) {
        // The stopped CLI's exit code says nothing (it exits 0), and the container may have exited,
        // been killed, or not have started yet (the kill missed a start still on its way).
        const [status, code] = (await this.job.cli.try(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name])).stdout.trim().split(' ');
        return { exitCode: status === 'exited' && code ? Number(code) : KILLED_EXIT_CODE, command, failure: `killed: ${abortReason(io.signal)}` };
      }
      const oom = (await this.job.cli.try(['inspect', '--format', '{{.State.OOMKilled}}', name])).stdout.trim() === 'true';
      const failure = oom ? `killed: out of memory (limit ${Math.round(limits.memoryBytes / 1048576)} MiB)` : undefined;
      return { exitCode: attached.exitCode, command, ...(failure ? { failure } : {}) };
    } finally {
      io.signal.removeEventListener('abort', kill);
    }
  }

  /** The created container's overlay2 layer directory: its `diff` (upper) and `work` directories. */
  private async layerDir(name: string): Promise<string> {
    const driver = JSON.parse(await this.job.cli.must(['inspect', '--format', '{{json .GraphDriver}}', name])) as { Name?: string; Data?: Record<string, string> | null };
    const upper = driver.Data?.UpperDir;
    const work = driver.Data?.WorkDir;
    if (driver.Name !== 'overlay2' || !upper || !work || path.dirname(upper) !== path.dirname(work)) {
      throw new Error(`cannot put the writable layer of ${name} on the job's disk: unexpected storage layout ${JSON.stringify(driver)}`);
    }
    return path.dirname(upper);
  }

  /**
   * The image id of `image` on the daemon: resolved with the job's credentials by our puller, and
   * loaded from its verified blobs unless the daemon already has that exact image.
   */
  private async pull(image: string, io: StepIO): Promise<string> {
    const known = this.pulled.get(image);
    if (known) return known;
    const request = { auth: this.job.auth, progress: io.progress ?? this.job.options.progress, signal: io.signal };
    const resolved = await this.job.images.resolve(image, request);
    if (!(await daemonImageId(this.job.cli, resolved.configDigest))) {
      const layers = await this.job.images.fetchVerified(resolved, request);
      await loadImage(this.job.cli, resolved, layers, io.signal);
    }
    this.pulled.set(image, resolved.configDigest);
    return resolved.configDigest;
  }

  /**
   * The uid/gid a step in `image` runs as: the image's User resolved against its own /etc/passwd
   * and /etc/group, as Docker would, but without running anything from the image — a root image
   * on a daemon without userns-remap must not run at all, not even for a probe.
   */
  private async stepUser(image: string): Promise<{ uid: number; gid: number }> {
    let ids = this.users.get(image);
    if (!ids) {
      const user = (JSON.parse(await this.job.cli.must(['image', 'inspect', '--format', '{{json .Config.User}}', image])) as string | null) ?? '';
      const numeric = /^(\d+):(\d+)$/.exec(user);
      if (user === '') ids = { uid: 0, gid: 0 };
      else if (numeric) ids = { uid: Number(numeric[1]), gid: Number(numeric[2]) };
      else ids = await this.userFromImageFiles(image, user);
      this.users.set(image, ids);
    }
    return ids;
  }

  /** Copies /etc/passwd and /etc/group out of a created (never started) container and resolves `user`. */
  private async userFromImageFiles(image: string, user: string): Promise<{ uid: number; gid: number }> {
    const name = `sf-${this.job.key}-user-${++this.lookups}`;
    const root = path.join(this.job.fs.jobDir, name);
    this.containers.add(name);
    try {
      await this.job.cli.must(['create', '--pull', 'never', '--name', name, '--network', 'none', '--entrypoint', '/bin/sh', image]);
      await fs.mkdir(path.join(root, 'etc'), { recursive: true, mode: 0o700 });
      // A missing file is left missing: resolveUser then says which name it could not find. `-L`:
      // a symlinked passwd is followed by the daemon inside the container's root, as a process in it
      // would see it (without it the link itself is copied and would dangle here).
      for (const file of ['passwd', 'group']) await this.job.cli.try(['cp', '-L', `${name}:/etc/${file}`, path.join(root, 'etc', file)]);
      const { uid, gid } = resolveUser(root, user);
      return { uid, gid };
    } finally {
      await this.remove(name).catch(() => {});
      await fs.rm(root, { recursive: true, force: true });
    }
  }

  /** The network flags of a step: none, or the holder's namespace (public network). */
  private async networkArgs(image: string): Promise<string[]> {
    if (this.job.config.network === 'none') return ['--network', 'none'];
    if (!this.holder) await this.startHolder(image);
    return ['--network', `container:${this.holder}`, '-v', `${path.join(this.job.fs.jobDir, 'resolv.conf')}:/etc/resolv.conf:ro`];
  }

  /**
   * The holder container whose network namespace every step joins. It runs the first step's image
   * (the only image known to be here) but only its /bin/sh waiting on stdin, as nobody, read-only,
   * without capabilities, in 16 MiB and 8 processes.
   */
  private async startHolder(image: string): Promise<void> {
    const name = `sf-${this.job.key}-net`;
    this.containers.add(name);
    try {
      await this.job.cli.must(['run', '--pull', 'never', '-d', '-i', '--name', name, '--network', 'none', '--user', '65534:65534', '--cap-drop', 'ALL', '--read-only',
        '--security-opt', 'no-new-privileges', '--memory', '16m', '--pids-limit', '8', '--entrypoint', '/bin/sh', image, '-c', 'read x']);
      const pid = Number(await this.job.cli.must(['inspect', '--format', '{{.State.Pid}}', name]));
      this.network = await createJobNetwork(this.job.key, 'public', this.job.uplink, this.job.config.stateDir, pid);
      await fs.writeFile(path.join(this.job.fs.jobDir, 'resolv.conf'), this.network.resolvConf);
      this.holder = name;
    } catch (err) {
      await this.network?.destroy().catch(() => {});
      this.network = undefined;
      await this.remove(name).catch(() => {});
      throw err;
    }
  }

  /** `docker rm -f`; a container that is already gone counts as removed. */
  private async remove(name: string): Promise<void> {
    const r = await this.job.cli.try(['rm', '-f', name]);
    if (r.exitCode !== 0 && !/no such container/i.test(r.stderr)) throw new DockerCommandError(r.argv, r.exitCode, r.signal, r.stderr);
    this.containers.delete(name);
  }

  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    const failures: string[] = [];
    for (const name of [...this.containers]) await this.remove(name).catch((err: unknown) => failures.push(err instanceof Error ? err.message : String(err)));
    await this.network?.destroy().catch((err: unknown) => failures.push(err instanceof Error ? err.message : String(err)));
    await this.job.fs.destroy();
    if (failures.length) throw new Error(`docker sandbox teardown: ${failures.join('; ')}`);
  }
}
