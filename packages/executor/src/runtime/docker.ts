import fs from 'node:fs/promises';
import path from 'node:path';
import type { DockerAuthConfig } from '@sandfleet/protocol';
import { capture, runProcess } from '../process/run.js';
import { findCredentials } from '../image/auth.js';
import { parseReference } from '../image/reference.js';
import { createJobNetwork, type JobNetwork } from '../network/job-network.js';
import { findBinary, SYSTEM_PATH, type RuntimeDeps } from './host.js';
import { jobKey } from './image-sandbox.js';
import { JobFilesystem } from './job-filesystem.js';
import type { Availability, Runtime, Sandbox, SandboxOptions, StepIO, StepResult, StepSpec } from './runtime.js';

/**
 * Docker, as Sourcegraph's docker runtime does it (reference §8.2): `docker run` per step with the
 * workspace at /data, `-w /data/<dir>`, `--entrypoint /bin/sh <image> /data/<script>`, cpu, memory
 * and pids limits, and auth through a per-job `--config` directory. Chosen only explicitly: the
 * daemon runs image root as host root unless it was started with `--userns-remap`.
 *
 * Differences from Sourcegraph's argv, and why:
 * - no `--rm`: the container is inspected after it exits (State.OOMKilled) and then removed;
 * - `--network container:<holder>`: Docker cannot join a network namespace by path, so the first
 *   step starts a tiny holder container (`--network none`, waiting on stdin) whose namespace we
 *   adopt and wire to the job's router exactly like the other runtimes; `none` jobs use
 *   `--network none`;
 * - registry mirrors for any registry: Docker's own `registry-mirrors` only apply to Docker Hub, so
 *   we `docker pull <mirror>/<repository>` and tag it as the image ourselves, in order, before the
 *   image's own registry.
 */
export class DockerRuntime implements Runtime {
  readonly name = 'docker' as const;
  readonly isolating = true;

  constructor(private readonly deps: RuntimeDeps, private readonly dockerHost = process.env.DOCKER_HOST) {}

  env(): Record<string, string> {
    return { PATH: SYSTEM_PATH, HOME: process.env.HOME ?? '/root', ...(this.dockerHost ? { DOCKER_HOST: this.dockerHost } : {}) };
  }

  async probe(): Promise<Availability> {
    if (!findBinary('docker')) return { available: false, reason: 'the docker CLI is not installed (apt-get install docker.io; or executor install docker)' };
    if (process.getuid?.() !== 0) return { available: false, reason: 'the executor must run as root (workspace disk mounts, network namespaces)' };
    const r = await capture(['docker', 'version', '--format', '{{.Server.Version}}'], { env: this.env(), signal: AbortSignal.timeout(10_000) });
    if (r.exitCode !== 0) return { available: false, reason: `no Docker daemon answers${this.dockerHost ? ` at ${this.dockerHost}` : ''} (${r.stderr.trim().split('\n').pop()})` };
    const info = await capture(['docker', 'info', '--format', '{{json .SecurityOptions}}'], { env: this.env() });
    const remapped = info.stdout.includes('userns');
    return { available: true, reason: `Docker ${r.stdout.trim()}${remapped ? ', userns-remap on' : ', no userns-remap: image root is host root'}` };
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    const key = jobKey(options.jobId);
    const stateDir = this.deps.config.stateDir;
    const remapped = (await capture(['docker', 'info', '--format', '{{json .SecurityOptions}}'], { env: this.env() })).stdout.includes('userns');
    const jfs = await JobFilesystem.create(stateDir, key, options.workspaceDir, options.limits.diskBytes, remapped ? undefined : 0);
    try {
      const configDir = path.join(jfs.jobDir, 'docker-config');
      await fs.mkdir(configDir, { mode: 0o700 });
      const auth = options.dockerAuth ?? this.deps.config.dockerAuthConfig;
      if (auth) await fs.writeFile(path.join(configDir, 'config.json'), JSON.stringify(auth), { mode: 0o600 });
      return new DockerSandbox(this, key, options, jfs, auth, configDir);
    } catch (err) {
      await jfs.destroy();
      throw err;
    }
  }

  get config() {
    return this.deps.config;
  }

  get uplink() {
    return this.deps.uplink;
  }
}

class DockerSandbox implements Sandbox {
  private steps = 0;
  private holder: string | undefined;
  private network: JobNetwork | undefined;
  private readonly pulled = new Set<string>();

  constructor(
    private readonly runtime: DockerRuntime,
    private readonly key: string,
    private readonly options: SandboxOptions,
    private readonly fs: JobFilesystem,
    private readonly auth: DockerAuthConfig | undefined,
    private readonly configDir: string,
  ) {}

  private docker(args: string[]): string[] {
    return ['docker', '--config', this.configDir, ...args];
  }

  private async must(args: string[], signal?: AbortSignal): Promise<string> {
    const r = await capture(this.docker(args), { env: this.runtime.env(), signal });
    if (r.exitCode !== 0) throw new Error(`docker ${args[0]} failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /** Pulls through the mirrors (tagging the result as `image`), then the image's own registry. */
  private async pull(image: string, signal: AbortSignal): Promise<void> {
    if (this.pulled.has(image)) return;
    const present = await capture(this.docker(['image', 'inspect', '--format', '{{.Id}}', image]), { env: this.runtime.env() });
    if (present.exitCode === 0) {
      this.pulled.add(image);
      return;
    }
    const ref = parseReference(image);
    const tagOrDigest = ref.digest ? `@${ref.digest}` : `:${ref.tag}`;
    const attempts = [
      ...this.runtime.config.registryMirrorUrls.map((m) => ({ label: `mirror ${m}`, ref: `${new URL(m).host}/${ref.repository}${tagOrDigest}` })),
      { label: ref.registry, ref: image },
    ];
    const failures: string[] = [];
    for (const attempt of attempts) {
      this.options.progress(`pulling ${image} from ${attempt.label}`);
      const r = await runProcess({
        argv: this.docker(['pull', '--quiet', attempt.ref]),
        env: this.runtime.env(),
        signal,
        onStderr: (c) => failures.push(`${attempt.label}: ${c.toString().trim()}`),
      });
      if (r.exitCode === 0) {
        if (attempt.ref !== image) await this.must(['tag', attempt.ref, image]);
        this.pulled.add(image);
        return;
      }
    }
    const creds = findCredentials(this.auth, ref.registry);
    const last = failures.join('; ');
    const detail = /unauthorized|authentication required|401/i.test(last)
      ? creds ? `the registry rejected the credentials for user "${creds.username}" (${last})` : `the registry requires authentication and no credentials are configured for it (${last})`
      : last;
    throw new Error(`cannot pull ${image} from ${attempts.map((a) => a.label).join(', ')}: ${detail}`);
  }

  private readonly ids = new Map<string, { uid: number; gid: number }>();

  /** The uid/gid the image runs as (its User may be a name only its /etc/passwd knows). */
  private async imageIds(image: string, signal: AbortSignal): Promise<{ uid: number; gid: number }> {
    let ids = this.ids.get(image);
    if (!ids) {
      const out = await this.must(['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', image, '-c', 'id -u; id -g'], signal);
      const [uid, gid] = out.split('\n').map(Number);
      ids = { uid: uid ?? 0, gid: gid ?? 0 };
      this.ids.set(image, ids);
    }
    return ids;
  }

  /** The holder container whose network namespace all steps share (public network only). */
  private async networkArgs(image: string, signal: AbortSignal): Promise<string[]> {
    if (this.options.network === 'none') return ['--network', 'none'];
    if (!this.holder) {
      const name = `sf-${this.key}-net`;
      await this.must(['run', '-d', '-i', '--name', name, '--network', 'none', '--entrypoint', '/bin/sh', '--memory', '16m', '--pids-limit', '8', image, '-c', 'read x'], signal);
      this.holder = name;
      const pid = Number(await this.must(['inspect', '--format', '{{.State.Pid}}', name]));
      this.network = await createJobNetwork(this.key, 'public', this.runtime.uplink, this.runtime.config.stateDir, pid);
      await fs.writeFile(path.join(this.fs.jobDir, 'resolv.conf'), this.network.resolvConf);
    }
    return ['--network', `container:${this.holder}`, '-v', `${path.join(this.fs.jobDir, 'resolv.conf')}:/etc/resolv.conf:ro`];
  }

  async run(step: StepSpec, io: StepIO): Promise<StepResult> {
    const { limits } = this.options;
    await this.pull(step.image, io.signal);
    const name = `sf-${this.key}-${++this.steps}`;
    const ids = await this.imageIds(step.image, io.signal);
    await this.fs.ownWorkspace(ids.uid, ids.gid);
    const args = [
      'run', '--name', name,
      ...(await this.networkArgs(step.image, io.signal)),
      ...(limits.cpus > 0 ? ['--cpus', String(limits.cpus)] : []),
      ...(limits.memoryBytes > 0 ? ['--memory', String(limits.memoryBytes), '--memory-swap', String(limits.memoryBytes)] : []),
      ...(limits.pids > 0 ? ['--pids-limit', String(limits.pids)] : []),
      '--security-opt', 'no-new-privileges',
      '-v', `${this.fs.dataDir}:/data`,
      '-w', path.posix.join('/data', step.dir),
      ...step.env.flatMap((e) => ['-e', e]),
      '--entrypoint', '/bin/sh', step.image, path.posix.join('/data', step.scriptPath),
    ];
    const command = this.docker(args);
    const kill = () => void capture(this.docker(['kill', name]), { env: this.runtime.env() }).catch(() => {});
    io.signal.addEventListener('abort', kill, { once: true });
    try {
      const result = await runProcess({ argv: command, env: this.runtime.env(), signal: io.signal, killGraceMs: 5000, onStdout: io.onStdout, onStderr: io.onStderr });
      const oom = (await capture(this.docker(['inspect', '--format', '{{.State.OOMKilled}}', name]), { env: this.runtime.env() })).stdout.trim() === 'true';
      let failure: string | undefined;
      if (io.signal.aborted) failure = 'killed: time limit exceeded';
      else if (oom) failure = `killed: out of memory (limit ${Math.round(limits.memoryBytes / 1048576)} MiB)`;
      if (io.signal.aborted && io.signal.reason instanceof Error && io.signal.reason.name !== 'TimeoutError') failure = `killed: ${io.signal.reason.message}`;
      return { exitCode: result.exitCode, command, ...(failure ? { failure } : {}) };
    } finally {
      io.signal.removeEventListener('abort', kill);
      await capture(this.docker(['rm', '-f', name]), { env: this.runtime.env() });
    }
  }

  async teardown(): Promise<void> {
    if (this.holder) await capture(this.docker(['rm', '-f', this.holder]), { env: this.runtime.env() });
    await this.network?.destroy();
    await this.fs.destroy();
  }
}
