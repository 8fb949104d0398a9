import { capture } from '../process/run.js';

/**
 * Versions of the host tools the executor depends on, for `executor validate` and for the telemetry
 * in heartbeats (docs/protocol.md, "Heartbeat and cancellation").
 */

/** Minimum git version (docs/protocol.md, "Configuration grammar"): `sparse-checkout set --no-cone` and protocol v2 fetches. */
export const MIN_GIT_VERSION: readonly [number, number] = [2, 26];

/** `git version` output, e.g. "git version 2.39.5"; undefined when git is not installed. */
export async function gitVersionOutput(hostPath: string): Promise<string | undefined> {
  return probe(['git', 'version'], hostPath);
}

/** `src version -client-only` output; undefined when src-cli is not installed. */
export async function srcCliVersionOutput(hostPath: string): Promise<string | undefined> {
  return probe(['src', 'version', '-client-only'], hostPath);
}

/** Parses "git version 2.39.5" (or "2.39.5.windows.1") into [major, minor, patch]. */
export function parseGitVersion(output: string): [number, number, number] | undefined {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

export function isGitVersionSupported(version: readonly [number, number, number]): boolean {
  const [major, minor] = version;
  return major > MIN_GIT_VERSION[0] || (major === MIN_GIT_VERSION[0] && minor >= MIN_GIT_VERSION[1]);
}

/** Runs `argv` found on `hostPath`, the executor's PATH. */
async function probe(argv: string[], hostPath: string): Promise<string | undefined> {
  try {
    const result = await capture(argv, { env: { PATH: hostPath }, signal: AbortSignal.timeout(10_000) });
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}
