import path from 'node:path';
import { capture, runProcess } from '../../process/run.js';
import { ID_SHIFT } from '../../image/ids.js';
import { describeCgroups, detectCgroups } from '../shared/cgroup.js';
import { checkHostBasics, findBinary, SYSTEM_PATH, type RuntimeDeps } from '../shared/host.js';
import { loadSeccompProfile, resolveSeccomp, SECCOMP_PROFILE, seccompBpf, SeccompUnavailableError } from '../shared/seccomp.js';
import { ImageSandbox, prepareJobResources, shellQuote, writePrivateFile, type JobResources, type LaunchResult, type StepLaunch } from './image-sandbox.js';
import { RuntimeUnavailableError, type Availability, type Runtime, type Sandbox, type SandboxOptions } from '../runtime.js';

/** Seccomp fd the wrapper shell opens for bwrap (`--seccomp 3`). */
const SECCOMP_FD = 3;

/**
 * bubblewrap: namespaces (user, pid, ipc, uts, cgroup, mount) around the step, in the job's own
 * network namespace, as an unprivileged host uid.
 *
 * bwrap can only map one uid into its user namespace: the one it runs as. So we start it as host
 * uid 100000 + <image uid> (setpriv), which is exactly who owns that user's files in the shifted
 * rootfs; image root therefore becomes host uid 100000, never 0. Files of other image users show up
 * as 65534 inside, which changes nothing for permission checks. bwrap has no resource limits of its
 * own: the wrapper shell joins the job's cgroup before exec'ing into nsenter → setpriv → bwrap.
 * The step runs under the seccomp allow-list (shared/seccomp.ts), compiled to BPF for a process
 * without capabilities (bwrap drops them all); the wrapper opens it as fd 3 before dropping root.
 */
export class BwrapRuntime implements Runtime {
  readonly name = 'bwrap' as const;
  readonly isolating = true;

  constructor(private readonly deps: RuntimeDeps) {}

  async probe(): Promise<Availability> {
    const bwrap = findBinary('bwrap');
    if (!bwrap) return { available: false, reason: 'bwrap is not installed (apt-get install bubblewrap; or executor install bwrap)' };
    const basics = checkHostBasics([], describeCgroups(detectCgroups()));
    if (basics) return basics;
    const trial = await capture(['setpriv', `--reuid=${ID_SHIFT}`, `--regid=${ID_SHIFT}`, '--clear-groups', bwrap, '--unshare-user', '--unshare-pid', '--unshare-net', '--ro-bind', '/', '/', '--proc', '/proc', '/bin/true'], { env: { PATH: SYSTEM_PATH } });
    if (trial.exitCode !== 0) return { available: false, reason: `bwrap cannot create namespaces here: ${trial.stderr.trim()}` };
    try {
      await this.seccompFilter();
    } catch (err) {
      if (err instanceof SeccompUnavailableError) return { available: false, reason: err.message };
      throw err;
    }
    const version = (await capture([bwrap, '--version'], { env: { PATH: SYSTEM_PATH } })).stdout.trim();
    return { available: true, reason: `${version}, seccomp allow-list ${this.deps.seccompProfile ?? SECCOMP_PROFILE}, ${describeCgroups(detectCgroups()).text}` };
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    let filter: string;
    try {
      filter = await this.seccompFilter();
    } catch (err) {
      if (err instanceof SeccompUnavailableError) throw new RuntimeUnavailableError('bwrap', err.message);
      throw err;
    }
    const job = await prepareJobResources(options, { deps: this.deps });
    return new BwrapSandbox(job, filter);
  }

  /** The compiled BPF file; SeccompUnavailableError when the profile or libseccomp is missing. */
  private async seccompFilter(): Promise<string> {
    return seccompBpf(this.deps.config.stateDir, resolveSeccomp(loadSeccompProfile(this.deps.seccompProfile), { caps: [] }));
  }
}

class BwrapSandbox extends ImageSandbox {
  constructor(job: JobResources, private readonly seccompFile: string) {
    super(job);
  }

  protected async launch(l: StepLaunch): Promise<LaunchResult> {
    const { limits } = this.job;
    const hostUid = ID_SHIFT + l.user.uid;
    const hostGid = ID_SHIFT + l.user.gid;
    const bwrap = [
      'bwrap',
      '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
      '--disable-userns',
      '--uid', String(l.user.uid), '--gid', String(l.user.gid),
      '--hostname', 'sandfleet',
      '--bind', l.root, '/',
      '--bind', this.job.fs.dataDir, '/data',
      '--proc', '/proc',
      '--dev', '/dev',
      // /tmp is RAM; its pages are charged to the job's memory cgroup, and the size caps it too.
      ...(limits.memoryBytes > 0 ? ['--size', String(limits.memoryBytes)] : []), '--tmpfs', '/tmp',
      '--cap-drop', 'ALL',
      '--seccomp', String(SECCOMP_FD),
      '--die-with-parent',
      '--new-session',
      '--clearenv',
      // The env (secrets) through a root-only file on fd 5, never argv: /proc/*/cmdline is world-readable.
      '--args', '5',
      '--chdir', l.cwd,
      '--', '/bin/sh', l.script,
    ];
    const envArgs = path.join(path.dirname(l.root), 'env.args');
    await writePrivateFile(envArgs, l.env.flatMap((pair) => ['--setenv', pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]).map((a) => `${a}\0`).join(''));
    const join = this.job.cgroup.procsFiles().map((f) => `echo $$ > ${shellQuote(f)}`).join(' && ');
    const argv = [
      '/bin/sh', '-c', `${join} && exec 5< ${shellQuote(envArgs)} && exec "$@" ${SECCOMP_FD}<${shellQuote(this.seccompFile)}`, 'sandfleet-step',
      'nsenter', `--net=${this.job.network.netnsPath}`, '--',
      'setpriv', `--reuid=${hostUid}`, `--regid=${hostGid}`, '--clear-groups', '--',
      ...bwrap,
    ];
    const result = await runProcess({
      argv,
      env: { PATH: SYSTEM_PATH },
      signal: l.io.signal,
      killGraceMs: 2000,
      onStdout: l.io.onStdout,
      onStderr: l.io.onStderr,
    });
    return { exitCode: result.exitCode, command: bwrap };
  }
}
