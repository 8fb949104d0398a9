import path from 'node:path';
import { runProcess } from '../process/run.js';
import { findBinary } from './shared/host.js';
import type { Availability, Runtime, Sandbox, SandboxOptions, StepIO, StepResult, StepSpec } from './runtime.js';

const DEFAULT_STEP_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * The step's supervisor: the kernel sends it SIGUSR1 when the executor dies (PR_SET_PDEATHSIG,
 * through setpriv), and it then kills the step's whole process group, so no step outlives a
 * SIGKILLed executor while its job runs again elsewhere. A process that leaves the group (setsid)
 * escapes this: the shell runtime isolates nothing. On SIGTERM (a cancel, sent to the group) it
 * reaps the step before it exits, and exits as the step did.
 */
const SUPERVISOR = `trap 'kill -KILL 0' USR1; trap 'wait $!; exit $?' TERM; /bin/sh "$1" & wait $!`;

/**
 * Runs steps directly on the host with /bin/sh: no isolation at all. It exists for development and
 * for trusted single-host set-ups, is never chosen by `auto`, and the executor warns when it is used.
 */
export class ShellRuntime implements Runtime {
  readonly name = 'shell' as const;
  readonly isolating = false;

  /** `hostPath`: the PATH steps get (the executor's own). */
  constructor(private readonly hostPath = DEFAULT_STEP_PATH) {}

  async probe(): Promise<Availability> {
    return { available: true, reason: '/bin/sh on the host (no isolation)' };
  }

  async prepare(options: SandboxOptions): Promise<Sandbox> {
    return new ShellSandbox(options.workspaceDir, this.hostPath);
  }
}

class ShellSandbox implements Sandbox {
  constructor(readonly workspaceDir: string, private readonly hostPath: string) {}

  async run(step: StepSpec, io: StepIO): Promise<StepResult> {
    const command = ['/bin/sh', path.join(this.workspaceDir, step.scriptPath)];
    // By absolute path: the step's env may set PATH, and it is the child's PATH that finds argv[0].
    const argv = [findBinary('setpriv') ?? '/usr/bin/setpriv', '--pdeathsig', 'USR1', '--', '/bin/sh', '-c', SUPERVISOR, 'sandfleet-step', command[1]!];
    const env: Record<string, string> = { PATH: this.hostPath, HOME: this.workspaceDir };
    for (const pair of step.env) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    const result = await runProcess({
      argv,
      cwd: path.join(this.workspaceDir, step.dir),
      env,
      signal: io.signal,
      onStdout: io.onStdout,
      onStderr: io.onStderr,
    });
    return { exitCode: result.exitCode, command };
  }

  async teardown(): Promise<void> {}
}
