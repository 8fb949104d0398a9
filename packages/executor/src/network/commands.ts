import { capture } from '../process/run.js';

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

/** Runs a host command for namespace/firewall plumbing; throws with its stderr when it fails. */
export async function must(argv: string[], stdin?: string): Promise<string> {
  const r = await capture(argv, { env: ENV, stdin });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Like `must` but ignores failure (for idempotent teardown). */
export async function tryRun(argv: string[]): Promise<boolean> {
  const r = await capture(argv, { env: ENV }).catch(() => undefined);
  return r?.exitCode === 0;
}

/** Runs argv inside a named network namespace (`ip netns exec`; fine for ip/nft/sysctl/servers). */
export function inNetns(ns: string, argv: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}
