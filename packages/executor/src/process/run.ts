import { spawn } from 'node:child_process';
import { SandfleetError } from '@sandfleet/protocol';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * The only place the executor starts processes. Every runtime (shell, bwrap, runc, runsc, docker,
 * qemu) is "a command line", so killing, streaming and cancellation are solved once, here.
 */
export interface RunOptions {
  argv: readonly string[];
  cwd?: string;
  /** The complete environment; nothing is inherited from the executor's own. */
  env?: Record<string, string>;
  /**
   * Written to the child's stdin, which is then closed; a stream is piped (with backpressure) and
   * its errors end stdin early. Without it stdin is /dev/null.
   */
  stdin?: string | Buffer | Readable;
  /** Aborting kills the whole process group: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  killGraceMs?: number;
  /**
   * Output handlers. When one returns a promise, that pipe is not read until it settles: the child
   * then blocks on write rather than the executor buffering a flood of output (backpressure).
   */
  onStdout?: OutputHandler;
  onStderr?: OutputHandler;
}

/** Receives one chunk; a returned promise pauses reading that pipe until it settles, anything else is ignored. */
export type OutputHandler = (chunk: Buffer) => unknown;

export interface RunResult {
  /** The exit code, or 128 + signal number when the process was killed by a signal. */
  exitCode: number;
  /** The signal that ended the process, if any. */
  signal: NodeJS.Signals | null;
  /** True when `signal` was aborted before the process ended. */
  aborted: boolean;
}

export class SpawnError extends SandfleetError {
  constructor(readonly argv: readonly string[], cause: unknown) {
    super(`could not start ${argv[0]}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export function runProcess(options: RunOptions): Promise<RunResult> {
  const [command, ...args] = options.argv;
  if (!command) return Promise.reject(new SpawnError(options.argv, 'empty command line'));
  return new Promise((resolve, reject) => {
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    // detached puts the child in its own process group, so `kill(-pid)` reaches its children too.
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? {},
      detached: true,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // The group is already gone.
      }
    };
    const onAbort = () => {
      aborted = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), options.killGraceMs ?? 5_000);
      killTimer.unref();
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    if (options.stdin !== undefined) {
      child.stdin?.on('error', () => {}); // a child that exits without reading stdin is not our error
      const input = options.stdin;
      if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin?.end(input);
      else if (child.stdin) pipeline(input, child.stdin).catch(() => {}); // the child's exit code tells
    }
    if (child.stdout) forwardOutput(child.stdout, options.onStdout);
    if (child.stderr) forwardOutput(child.stderr, options.onStderr);
    // 'error' fires instead of 'close' when the binary cannot be started.
    child.once('error', (err) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(new SpawnError(options.argv, err));
    });
    child.once('close', (code, sig) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      // Leftover grandchildren that escaped the exit are killed with the group.
      if (aborted) killGroup('SIGKILL');
      const exitCode = code ?? 128 + (sig ? SIGNAL_NUMBERS[sig] ?? 0 : 0);
      resolve({ exitCode, signal: sig, aborted });
    });
  });
}

/** The PATH of a captured command whose caller gives no environment. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
function forwardOutput(stream: Readable, handler: OutputHandler | undefined): void {
  stream.on('data', (chunk: Buffer) => {
    // Handlers typed as returning void may still hand a promise through (e.g. via a sandbox's StepIO).
    const wait = handler?.(chunk);
    if (!isPromiseLike(wait)) return;
    stream.pause();
    const resume = () => stream.resume();
    wait.then(resume, resume);
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<void> {
  return typeof (value as PromiseLike<void> | null)?.then === 'function';
}

/** Runs a short command and collects its output; for probes such as `git version`. */
export async function capture(
  argv: readonly string[],
  options: Omit<RunOptions, 'argv' | 'onStdout' | 'onStderr'> = {},
): Promise<RunResult & { stdout: string; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const result = await runProcess({
    env: { PATH: DEFAULT_PATH },
    ...options,
    argv,
    onStdout: (c) => out.push(c),
    onStderr: (c) => err.push(c),
  });
  return { ...result, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
