import fs from 'node:fs';
import path from 'node:path';
import { runProcess } from '../process/run.js';
import { KillableCgroup } from './shared/cgroup.js';
import { findBinary } from './shared/host.js';
import type { Availability, Runtime, Sandbox, SandboxOptions, StepIO, StepResult, StepSpec } from './runtime.js';

const DEFAULT_STEP_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * The step's supervisor, run with `$1` the step script and `$2` the step's cgroup v2 leaf. The step
 * joins the leaf before its first instruction, so everything it starts stays there — also a process
 * that calls setsid or double-forks out of the process group. The kernel sends the supervisor
 * SIGUSR1 when the executor dies (PR_SET_PDEATHSIG, through setpriv); it then kills the leaf and
 * removes it, so no step outlives a SIGKILLed executor while its job runs again elsewhere. When the
 * step ends, or on SIGTERM (a cancel, sent to the process group) once the step is reaped, it kills
 * the leaf too, and exits as the step did. Commands by absolute path: the step's env may set PATH.
 */
const CGROUP_SUPERVISOR = [
  'cg=$2',
  'killcg() { echo 1 > "$cg/cgroup.kill"; }',
  'dropcg() { killcg; i=0; while ! /bin/rmdir "$cg" 2>/dev/null && [ $i -lt 100 ]; do /bin/sleep 0.05; i=$((i+1)); done; }',
  "trap 'dropcg; exit 137' USR1",
  "trap 'wait $!; s=$?; killcg; exit $s' TERM",
  `/bin/sh -c 'echo $$ > "$1/cgroup.procs" && exec /bin/sh "$2"' sandfleet-step "$cg" "$1" &`,
  'wait $!; s=$?; killcg; exit $s',
].join('\n');

/**
 * Without a usable cgroup v2 (no mount, not root, Linux before 5.14) the supervisor kills the step's
 * process group instead, which a process that calls setsid leaves.
 */
const GROUP_SUPERVISOR = `trap 'kill -KILL 0' USR1; trap 'wait $!; exit $?' TERM; /bin/sh "$1" & wait $!`;

let leafSeq = 0;
const LEAF_NAME = /^shell-(\d+)-\d+$/;
function newLeaf(): KillableCgroup | { unavailable: string } {
  return KillableCgroup.create(`shell-${process.pid}-${++leafSeq}`);
}

/**
 * Kills the step leaves of executors that are gone. A supervisor that was itself SIGKILLed (a
 * service manager stopping the executor's own cgroup, which the leaves are not in) could not kill
 * its step; the next executor start does. Leaves are named after their executor's pid.
 */
async function sweepOrphanedLeaves(): Promise<void> {
  for (const { name, cgroup } of KillableCgroup.existing(LEAF_NAME)) {
    const owner = Number(LEAF_NAME.exec(name)![1]);
    if (owner !== process.pid && !fs.existsSync(`/proc/${owner}`)) await cgroup.destroy();
  }
}

/**
 * Runs steps directly on the host with /bin/sh: no isolation at all. It exists for development and
 * for trusted single-host set-ups, is never chosen by `auto`, and the executor warns when it is used.
 */
export class ShellRuntime implements Runtime {
  readonly name = 'shell' as const;
  readonly isolating = false;

  /** `hostPath`: the PATH steps get (the executor's own). */
  constructor(private readonly hostPath = DEFAULT_STEP_PATH) {}

  /** Also kills what steps of executors that died without their supervisor left running. */
  async probe(): Promise<Availability> {
    await sweepOrphanedLeaves();
    const leaf = newLeaf();
    if (leaf instanceof KillableCgroup) {
      await leaf.destroy();
      return { available: true, reason: '/bin/sh on the host (no isolation; each step in its own cgroup, killed when it ends)' };
    }
    return { available: true, reason: `/bin/sh on the host (no isolation; ${leaf.unavailable}, so a step that calls setsid can outlive the executor)` };
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    return new ShellSandbox(options.workspaceDir, this.hostPath);
  }
}

class ShellSandbox implements Sandbox {
  constructor(readonly workspaceDir: string, private readonly hostPath: string) {}

  async run(step: StepSpec, io: StepIO): Promise<StepResult> {
    const script = path.join(this.workspaceDir, step.scriptPath);
    const command = ['/bin/sh', script];
    const leaf = newLeaf();
    const supervisor = leaf instanceof KillableCgroup ? [CGROUP_SUPERVISOR, 'sandfleet-step', script, leaf.dir] : [GROUP_SUPERVISOR, 'sandfleet-step', script];
    // By absolute path: the step's env may set PATH, and it is the child's PATH that finds argv[0].
    const argv = [findBinary('setpriv') ?? '/usr/bin/setpriv', '--pdeathsig', 'USR1', '--', '/bin/sh', '-c', ...supervisor];
    const env: Record<string, string> = { PATH: this.hostPath, HOME: this.workspaceDir };
    for (const pair of step.env) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    try {
      const result = await runProcess({
        argv,
        cwd: path.join(this.workspaceDir, step.dir),
        env,
        signal: io.signal,
        onStdout: io.onStdout,
        onStderr: io.onStderr,
      });
      return { exitCode: result.exitCode, command };
    } finally {
      // Whatever the step left behind (also when the supervisor itself was SIGKILLed after a cancel).
      if (leaf instanceof KillableCgroup) await leaf.destroy();
    }
  }

  async teardown(): Promise<void> {}
}
