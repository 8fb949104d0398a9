import path from 'node:path';
import { runProcess } from '../process/run.js';
import type { Availability, Runtime, Sandbox, SandboxOptions, StepIO, StepResult, StepSpec } from './runtime.js';

const DEFAULT_STEP_PATH = '/usr/local/bin:/usr/bin:/bin';

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
    const env: Record<string, string> = { PATH: this.hostPath, HOME: this.workspaceDir };
    for (const pair of step.env) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    const result = await runProcess({
      argv: command,
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
