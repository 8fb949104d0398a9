/** Checks of systemd units and environment files with systemd's own tools and sh. */
import { capture, SYSTEM_PATH_ENV } from './capture.js';

/**
 * `systemd-analyze verify` of one unit file: passes only with exit 0 and nothing said, since it
 * reports settings it ignores (a misspelt key, an unparsable value) as warnings.
 */
export async function verifyUnit(file: string): Promise<{ ok: boolean; output: string }> {
  const r = await capture(['systemd-analyze', 'verify', '--man=no', file], { env: SYSTEM_PATH_ENV });
  const output = `${r.stdout}${r.stderr}`.trim();
  return { ok: r.exitCode === 0 && output === '', output };
}

/**
 * The values an environment file sets, as sh reads it: systemd's double-quoted values take the
 * same backslash escapes, so a value that survives this survives systemd.
 */
export async function readEnvironmentFile(file: string): Promise<Record<string, string>> {
  const r = await capture(['/bin/sh', '-c', 'set -a; . "$1"; exec env -0', 'sh', file], { env: {} });
  if (r.exitCode !== 0) throw new Error(`sh could not read ${file}: ${r.stderr}`);
  const entries = r.stdout.split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]);
  return Object.fromEntries(entries.filter(([name]) => name !== 'PWD' && name !== 'SHLVL' && name !== '_'));
}
