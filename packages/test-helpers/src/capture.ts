import { spawn } from 'node:child_process';

/** The usual system binary directories, for commands that must not depend on the caller's PATH. */
export const SYSTEM_PATH_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

export interface Captured {
  /** The exit code; 128 + the signal number when a signal ended it; -1 when it could not start. */
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs argv to completion and collects its output; never throws for a failing command. */
export function capture(argv: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Captured> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, env: options.env ?? SYSTEM_PATH_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('error', (err) => resolve({ exitCode: -1, stdout, stderr: stderr + String(err) }));
    child.once('close', (code, signal) => resolve({ exitCode: code ?? 128 + (signal ? signalNumber(signal) : 0), stdout, stderr }));
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return numbers[signal] ?? 0;
}
