import fs from 'node:fs/promises';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { writePrivateFile } from '../oci/image-sandbox.js';

/**
 * A step's env reaches `docker create` through `--env-file`, never `-e NAME=value`: argv is
 * world-readable in /proc/<pid>/cmdline while the command runs, and step env carries job secrets.
 *
 * The docker CLI reads the file line by line, without any quoting: it drops leading whitespace,
 * skips empty lines and lines starting with `#`, splits at the first `=`, rejects names with
 * whitespace and takes a bare `NAME` from the CLI's own environment. Its line scanner also drops a
 * trailing carriage return. Every entry that would not come out of the file exactly as given is
 * refused here, before anything is created.
 */
export class UnrepresentableEnvError extends SandfleetError {
  constructor(readonly variable: string, why: string) {
    super(`cannot pass the step's env variable ${JSON.stringify(variable)} to Docker: ${why}`);
  }
}

/** The `--env-file` content for `env` (`NAME=value` pairs); throws UnrepresentableEnvError. */
export function envFileText(env: readonly string[]): string {
  return env.map((pair) => `${checkedPair(pair)}\n`).join('');
}

function checkedPair(pair: string): string {
  const eq = pair.indexOf('=');
  const name = eq < 0 ? pair : pair.slice(0, eq);
  const value = eq < 0 ? '' : pair.slice(eq + 1);
  if (eq < 0) throw new UnrepresentableEnvError(name, 'it has no "=" (docker would take its value from the executor\'s environment)');
  if (name === '') throw new UnrepresentableEnvError(pair.slice(0, 40), 'the name is empty');
  if (/[\s\u0085=\0]/.test(name) || name.startsWith('#')) throw new UnrepresentableEnvError(name, 'the name contains whitespace, "=", NUL or starts with "#"');
  if (/[\n\0]/.test(value)) throw new UnrepresentableEnvError(name, 'the value contains a newline or NUL, which an env file cannot carry; encode it (for example base64) and decode it in the step');
  if (value.endsWith('\r')) throw new UnrepresentableEnvError(name, 'the value ends with a carriage return, which docker drops from an env file');
  return pair;
}

/**
 * Writes `env` to a 0600 file in `dir` (a 0700 directory), runs `fn` with its path and removes it
 * again: the daemon has copied the env into the container's own root-only config by then.
 */
export async function withEnvFile<T>(dir: string, name: string, env: readonly string[], fn: (file: string) => Promise<T>): Promise<T> {
  const text = envFileText(env);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  const file = path.join(dir, `${name}.env`);
  await writePrivateFile(file, text);
  try {
    return await fn(file);
  } finally {
    await fs.rm(file, { force: true });
  }
}
