import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The version this executor reports as `version` (dequeue) and `executorVersion` (heartbeat).
 * The semver core is at least 4.3.0 so Sourcegraph instances send the v2 Job payload (docs/protocol.md,
 * "Dequeue") and its major.minor stays within the "compatible" window of recent instances; the build
 * metadata names the implementation.
 */
export const EXECUTOR_VERSION = '5.3.0+sandfleet.0.1.0';

/** Set by the release build (scripts/release.ts) to the commit it was built from. */
declare const __SANDFLEET_COMMIT__: string | undefined;

let commit: string | undefined;

/**
 * The commit this executor was built from: stamped into a release build; when running from a
 * checkout, that checkout's HEAD; `unknown` when neither says.
 */
export function executorCommit(): string {
  if (typeof __SANDFLEET_COMMIT__ === 'string') return __SANDFLEET_COMMIT__;
  return (commit ??= checkoutCommit() ?? 'unknown');
}

function checkoutCommit(): string | undefined {
  try {
    const dir = path.dirname(fileURLToPath(import.meta.url));
    return execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim() || undefined;
  } catch {
    return undefined;
  }
}
