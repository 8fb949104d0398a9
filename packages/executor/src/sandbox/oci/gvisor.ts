import path from 'node:path';
import { capture } from '../../process/run.js';
import { describeCgroups, detectCgroups } from '../shared/cgroup.js';
import { checkHostBasics, findBinary, SYSTEM_PATH, type RuntimeDeps } from '../shared/host.js';
import { ImageSandbox, prepareJobResources, privateDir, writePrivateFile, type LaunchResult, type StepLaunch } from './image-sandbox.js';
import { buildSpec } from './oci-spec.js';
import { runContainer } from './oci.js';
import type { Availability, Runtime, Sandbox, SandboxOptions } from '../runtime.js';

/**
 * Host tasks a gVisor sandbox needs beyond the job's own: the sentry's and gofer's Go threads and,
 * under the ptrace platform, stub processes and tracing threads for guest tasks. Measured here:
 * pids.max 20 stops the sandbox from starting; with 64 + 256 a step running five parallel
 * subshells of `nc`/`nslookup` crashed the sentry ("panic: error initializing first thread:
 * resource temporarily unavailable"); 64 + 1024 runs it. gVisor has no guest pids limit of its
 * own here, so the job's pids limit becomes this much larger on the host, and a fork bomb ends
 * with the sentry crashing at that limit (contained, but the step gets no output). Neither spec
 * field helps with this runsc (20221219), measured: linux.resources.pids is applied to the
 * sandbox's host cgroup, sentry included (the bomb then ends the same way, earlier), and an
 * RLIMIT_NPROC in process.rlimits does not stop the bomb before the memory limit kills it.
 */
export const GVISOR_PIDS_HEADROOM = 1024;

/**
 * gVisor (runsc) with the ptrace platform (no KVM here, and this runsc predates systrap). The
 * step's syscalls are served by gVisor's own kernel, so a kernel bug on the host is not directly
 * reachable. Networking: `--network=host` *inside the job's network namespace* (given by path in
 * the bundle), i.e. the host kernel's stack of that namespace, filtered by the job's router;
 * `--network=sandbox` is broken on this kernel (google/gvisor#10704). `none` jobs get
 * `--network=none`. The bundle is the same as for runc/crun minus seccomp (gVisor filters the
 * sentry itself) and minus the user namespace: this runsc fails to boot with a spec user namespace
 * and `--network=host` ("error setting up chroot: error converting mounts: operation not
 * permitted"). So gVisor gets an *unshifted* copy of the image (ids as in the image) and image root
 * is root only inside gVisor's kernel: it is confined by gVisor, not mapped to another host uid, and
 * files it creates in the workspace are owned by host root.
 */
export class GvisorRuntime implements Runtime {
  readonly name = 'gvisor' as const;
  readonly isolating = true;

  constructor(private readonly deps: RuntimeDeps) {}

  async probe(): Promise<Availability> {
    const runsc = findBinary('runsc');
    if (!runsc) return { available: false, reason: 'runsc is not installed (apt-get install runsc; or executor install gvisor)' };
    const basics = checkHostBasics([], describeCgroups(detectCgroups()));
    if (basics) return basics;
    const version = (await capture([runsc, '--version'], { env: { PATH: SYSTEM_PATH } })).stdout.split('\n')[0]?.trim() ?? 'runsc';
    return { available: true, reason: `${version}, platform ptrace, ${describeCgroups(detectCgroups()).text}` };
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    const { limits } = this.deps.config;
    // Only the host cgroup gets the headroom; messages quote the job's own limits.
    const cgroupLimits = { ...limits, pids: limits.pids > 0 ? limits.pids + GVISOR_PIDS_HEADROOM : 0 };
    const job = await prepareJobResources(options, { deps: this.deps, idShift: 0, cgroupLimits });
    return new GvisorSandbox(job);
  }
}

class GvisorSandbox extends ImageSandbox {
  protected async launch(l: StepLaunch): Promise<LaunchResult> {
    const bundle = path.dirname(l.root);
    const stateRoot = path.join(this.job.stateDir, 'oci', 'runsc');
    await privateDir(path.dirname(stateRoot));
    await privateDir(stateRoot);
    const spec = buildSpec(this.job, l, { userNamespace: false, seccomp: false, cgroupsPath: `/${this.job.cgroup.relPath}/${l.stepName}`, resources: false });
    await writePrivateFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    const network = this.job.policy === 'none' ? 'none' : 'host';
    return runContainer('runsc', ['--root', stateRoot, '--platform=ptrace', `--network=${network}`], `sf-${this.job.key}-${l.stepName}`, bundle, l, stateRoot);
  }
}
