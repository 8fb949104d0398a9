import fs from 'node:fs/promises';
import path from 'node:path';
import { capture, runProcess } from '../../process/run.js';
import { describeCgroups, detectCgroups } from '../shared/cgroup.js';
import { checkHostBasics, findBinary, SYSTEM_PATH, type RuntimeDeps } from '../shared/host.js';
import { ImageSandbox, prepareJobResources, privateDir, writePrivateFile, type JobResources, type LaunchResult, type StepLaunch } from './image-sandbox.js';
import { buildSpec } from './oci-spec.js';
import { loadSeccompProfile, SECCOMP_PROFILE, SeccompUnavailableError, type SeccompProfile } from '../shared/seccomp.js';
import { RuntimeUnavailableError, type Availability, type OciBinary, type Runtime, type Sandbox, type SandboxOptions } from '../runtime.js';


/**
 * Whether crun can run here. crun refuses hybrid cgroup hosts whose v2 tree still owns a controller
 * ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"); on our machines
 * that controller is hugetlb, and `executor install oci` moves it to a v1 hierarchy.
 */
export async function crunUsable(): Promise<{ ok: boolean; why: string }> {
  if (!findBinary('crun')) return { ok: false, why: 'crun is not installed' };
  const layout = detectCgroups();
  if (layout.v2 && layout.v1All.length > 0) {
    const controllers = (await fs.readFile(path.join(layout.v2, 'cgroup.controllers'), 'utf8').catch(() => '')).trim();
    if (controllers) return { ok: false, why: `crun: hybrid cgroups with v2 controllers (${controllers}); run \`executor install oci\` to move hugetlb to v1` };
  }
  return { ok: true, why: 'crun' };
}

/**
 * runc or crun with one OCI bundle per step: the step's overlay root, /data bound in, a user
 * namespace mapping image ids onto 100000+, no_new_privileges, the seccomp allow-list (shared/seccomp.ts), and the
 * job's network namespace by path. The cgroup is `/sandfleet/<job>/<step>`, below the job cgroup
 * that holds the memory limit (so OOM kills stay countable after the runtime removes its cgroup);
 * pids and cpu are also in linux.resources.
 */
export class OciRuntime implements Runtime {
  readonly name = 'oci' as const;
  readonly isolating = true;

  constructor(private readonly deps: RuntimeDeps, private readonly preferred?: OciBinary) {}

  /** The binary to use: the preferred one, else crun when usable, else runc. */
  async binary(): Promise<{ binary?: OciBinary; why: string }> {
    const crun = await crunUsable();
    if (this.preferred === 'crun') return crun.ok ? { binary: 'crun', why: 'crun' } : { why: crun.why };
    if (this.preferred === 'runc') return findBinary('runc') ? { binary: 'runc', why: 'runc' } : { why: 'runc is not installed' };
    if (crun.ok) return { binary: 'crun', why: 'crun' };
    if (findBinary('runc')) return { binary: 'runc', why: `runc (${crun.why})` };
    return { why: `neither runc nor crun is installed (apt-get install runc; or executor install oci); ${crun.why}` };
  }

  async probe(): Promise<Availability> {
    const { binary, why } = await this.binary();
    if (!binary) return { available: false, reason: why };
    const basics = checkHostBasics([], describeCgroups(detectCgroups()));
    if (basics) return basics;
    const seccomp = seccompProfile(this.deps.seccompProfile);
    if (seccomp instanceof SeccompUnavailableError) return { available: false, reason: seccomp.message };
    const version = (await capture([binary, '--version'], { env: { PATH: SYSTEM_PATH } })).stdout.split('\n')[0]?.trim() ?? binary;
    return { available: true, reason: `${version}${why === binary ? '' : ` — ${why}`}, seccomp allow-list ${this.deps.seccompProfile ?? SECCOMP_PROFILE}, ${describeCgroups(detectCgroups()).text}` };
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    const { binary, why } = await this.binary();
    if (!binary) throw new RuntimeUnavailableError('oci', why);
    const seccomp = seccompProfile(this.deps.seccompProfile);
    if (seccomp instanceof SeccompUnavailableError) throw new RuntimeUnavailableError('oci', seccomp.message);
    const job = await prepareJobResources(options, { deps: this.deps });
    return new OciSandbox(job, binary, seccomp);
  }
}

/** The seccomp profile, or why there is none (steps never run unfiltered). */
function seccompProfile(file?: string): SeccompProfile | SeccompUnavailableError {
  try {
    return loadSeccompProfile(file);
  } catch (err) {
    if (err instanceof SeccompUnavailableError) return err;
    throw err;
  }
}

class OciSandbox extends ImageSandbox {
  constructor(job: JobResources, private readonly binary: OciBinary, private readonly seccomp: SeccompProfile) {
    super(job);
  }

  protected async launch(l: StepLaunch): Promise<LaunchResult> {
    const bundle = path.dirname(l.root);
    const stateRoot = path.join(this.job.stateDir, 'oci', this.binary);
    await privateDir(path.dirname(stateRoot));
    await privateDir(stateRoot);
    const spec = buildSpec(this.job, l, { userNamespace: true, seccomp: this.seccomp, cgroupsPath: `/${this.job.cgroup.relPath}/${l.stepName}`, resources: true });
    await writePrivateFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    return runContainer(this.binary, ['--root', stateRoot], `sf-${this.job.key}-${l.stepName}`, bundle, l, stateRoot);
  }
}

/**
 * `<binary> [global flags] run --bundle B ID` in the foreground with the step's stdio. On abort the
 * container is SIGKILLed through the runtime right away — signalling the `run` process alone would
 * leave the container's init (which ignores SIGTERM as pid 1) running. A foreground `run` deletes
 * the container when it ends; `delete --force` follows only when the runtime's state directory
 * (`stateRoot`, its `--root`) still names the container, or was aborted: one runtime invocation
 * per step instead of two.
 */
export async function runContainer(binary: string, globalFlags: string[], id: string, bundle: string, l: StepLaunch, stateRoot: string): Promise<LaunchResult> {
  const env = { PATH: SYSTEM_PATH };
  const command = [binary, ...globalFlags, 'run', '--bundle', bundle, id];
  const kill = () => void capture([binary, ...globalFlags, 'kill', id, 'KILL'], { env }).catch(() => {});
  l.io.signal.addEventListener('abort', kill, { once: true });
  try {
    const result = await runProcess({ argv: command, env, signal: l.io.signal, killGraceMs: 5000, onStdout: l.io.onStdout, onStderr: l.io.onStderr });
    return { exitCode: result.exitCode, command };
  } finally {
    l.io.signal.removeEventListener('abort', kill);
    if (l.io.signal.aborted || (await stateMentions(stateRoot, id))) await capture([binary, ...globalFlags, 'delete', '--force', id], { env }).catch(() => {});
  }
}

/** Whether the runtime's state directory still has an entry for container `id` (or cannot be read). */
async function stateMentions(stateRoot: string, id: string): Promise<boolean> {
  try {
    return (await fs.readdir(stateRoot)).some((name) => name.includes(id));
  } catch {
    return true;
  }
}
