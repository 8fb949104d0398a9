import type { Readable } from 'node:stream';
import { capture, runProcess, type RunResult } from '../../process/run.js';
import { SYSTEM_PATH } from '../shared/host.js';
import { SandfleetError } from '@sandfleet/protocol';

/**
 * The docker CLI as the docker runtime uses it: one environment (PATH, HOME, DOCKER_HOST), an
 * optional per-job `--config` directory, and failures that say which command failed, how, and what
 * the daemon answered — an error that reads `docker run failed: ` helps nobody.
 */

/**
 * How long a short docker command (create, inspect, rm, …) may take. These commands are never
 * killed by a step's or job's abort signal: killing the CLI does not undo what the daemon is doing
 * (a `docker run -d` killed half-way may still start its container, which then nobody removes), so
 * they run to completion and the caller checks the signal between them. The timeout only catches a
 * daemon that stopped answering.
 */
export const DOCKER_COMMAND_TIMEOUT_MS = 120_000;

export class DockerCommandError extends SandfleetError {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number,
    readonly signal: NodeJS.Signals | null,
    readonly stderr: string,
    readonly why?: string,
  ) {
    const how = why ?? (signal ? `killed by ${signal}` : `exit ${exitCode}`);
    super(`${describeArgv(argv)} failed (${how}): ${stderr.trim() || '(no error output)'}`);
  }
}

/** The argv for messages, with the values of `-e NAME=value` left out (they may be secrets). */
export function describeArgv(argv: readonly string[]): string {
  return argv.map((a, i) => (argv[i - 1] === '-e' ? a.replace(/=.*/s, '=…') : a)).join(' ');
}

export interface DockerRunOptions {
  /** Kills the CLI when aborted; only for commands that are safe to kill (pull, a step's start). */
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  killGraceMs?: number;
  /** Piped to the command's stdin (`docker load`). */
  stdin?: Readable;
}

export class DockerCli {
  /** `home`: HOME of the CLI (the executor's own; /root when it has none). */
  constructor(private readonly dockerHost: string | undefined, private readonly home = '/root', private readonly configDir?: string) {}

  /** A CLI for the same daemon with a job's `--config` directory (registry credentials). */
  withConfig(configDir: string): DockerCli {
    return new DockerCli(this.dockerHost, this.home, configDir);
  }

  get host(): string | undefined {
    return this.dockerHost;
  }

  env(): Record<string, string> {
    return { PATH: SYSTEM_PATH, HOME: this.home, ...(this.dockerHost ? { DOCKER_HOST: this.dockerHost } : {}) };
  }

  argv(args: readonly string[]): string[] {
    return ['docker', ...(this.configDir ? ['--config', this.configDir] : []), ...args];
  }

  /** Runs a short command to completion (bounded by DOCKER_COMMAND_TIMEOUT_MS); never throws on its exit code. */
  async try(args: readonly string[]): Promise<RunResult & { stdout: string; stderr: string; argv: string[] }> {
    const argv = this.argv(args);
    const r = await capture(argv, { env: this.env(), signal: AbortSignal.timeout(DOCKER_COMMAND_TIMEOUT_MS) });
    return { ...r, argv };
  }

  /** Like `try`, but a failure is a DockerCommandError; returns trimmed stdout. */
  async must(args: readonly string[]): Promise<string> {
    const r = await this.try(args);
    if (r.exitCode !== 0 || r.aborted) {
      throw new DockerCommandError(r.argv, r.exitCode, r.signal, r.stderr, r.aborted ? `no answer within ${DOCKER_COMMAND_TIMEOUT_MS / 1000} s` : undefined);
    }
    return r.stdout.trim();
  }

  /** A long-running command (pull, a step) with streamed output; `signal` kills it. */
  async stream(args: readonly string[], options: DockerRunOptions): Promise<RunResult & { argv: string[] }> {
    const argv = this.argv(args);
    const r = await runProcess({ argv, env: this.env(), ...options });
    return { ...r, argv };
  }
}
