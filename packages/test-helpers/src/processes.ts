import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { OWNER_ENV } from './leaks.js';

/** True while a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Running, and not merely a zombie waiting for its parent to reap it. */
export function isRunning(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Polls `probe` until it returns something other than undefined or false, and resolves with that;
 * rejects after `timeoutMs` naming `what`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface SpawnedProcess {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far, interleaved. */
  output: () => string;
  /** Resolves with the exit code (null when a signal ended it). */
  exit: Promise<number | null>;
  /** Resolves once `pattern` appears on stdout; rejects if the process exits first. */
  outputMatches: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>;
  /** Sends `signal`, then SIGKILL after `graceMs`, and waits for the exit. */
  stop: (signal?: NodeJS.Signals, graceMs?: number) => Promise<void>;
}

/** A child process whose output is collected, with a bounded stop. */
export function spawnProcess(command: string, args: string[], env: Record<string, string>): SpawnedProcess {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exit = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
  const outputMatches = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no ${pattern} in ${timeoutMs} ms:\n${out}`)), timeoutMs);
      const check = () => {
        const m = pattern.exec(out);
        if (m) finish(undefined, m);
      };
      const finish = (err?: Error, match?: RegExpExecArray) => {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        if (err) reject(err);
        else resolve(match!);
      };
      child.stdout!.on('data', check);
      void exit.then((code) => finish(new Error(`exited with ${code} before printing ${pattern}:\n${out}`)));
      check();
    });
  return { child, output: () => out, exit, outputMatches, stop: (signal, graceMs) => stopProcess(child, signal, graceMs) };
}

/** Sends `signal` (SIGKILL after `graceMs`) and waits for the exit; a no-op once it exited. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * The minimal environment a spawned test process gets: a PATH, the mark that lets the leak check
 * find it and its descendants, and nothing else of this shell's.
 */
export function basicEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', [OWNER_ENV]: String(process.pid), ...extra };
}
