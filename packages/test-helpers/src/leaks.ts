/**
 * Finds what a test file leaves behind: processes, network namespaces, cgroups, mounts and temp
 * directories. Several test files run at once on one machine (and other people's runs too), so
 * only what this test process can be sure is its own counts:
 * - processes: descendants of this process, and any process whose environment carries
 *   OWNER_ENV=<this pid> (set for this process and by basicEnv, so it survives reparenting);
 * - network namespaces, cgroups (below a `sandfleet` group) and mounts whose name carries TEST_TAG,
 *   which test harnesses put in the job ids they give sandboxes (the executor derives netns, cgroup
 *   and job directory names from the job id), and network namespaces registered with trackNetns;
 * - mounts below, and temp directories made by, makeTempDir.
 * A namespace, cgroup or mount made under a name without the tag is not seen.
 */
import fs from 'node:fs';
import { remainingTempDirs, tempDirsEverMade } from './temp-dirs.js';

/** Put in names of things a test creates so the leak check can tell they belong to this process. */
export const TEST_TAG = `t${process.pid}`;
/** The environment variable that marks processes started for this test process. */
export const OWNER_ENV = 'SANDFLEET_TEST_OWNER';

const trackedNetns = new Set<string>();

/** A network namespace a helper created; it must be gone when the test file ends. */
export function trackNetns(name: string): void {
  trackedNetns.add(name);
}

/** A job id carrying TEST_TAG, so the sandbox resources made for it are attributed to this process. */
export function taggedJobId(name: string): string {
  return `${TEST_TAG}-${name}`;
}

export interface LeakSnapshot {
  processes: string[];
  netns: string[];
  cgroups: string[];
  mounts: string[];
  tempDirs: string[];
}

const taggedName = new RegExp(`(^|[-/])${TEST_TAG}-`);

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

interface ProcessInfo {
  pid: number;
  ppid: number;
  state: string;
  command: string;
}

function processInfo(pid: number): ProcessInfo | undefined {
  const stat = readOr(`/proc/${pid}/stat`, '');
  // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so split at the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const [state, ppid] = stat.slice(close + 2).split(' ');
  const command = readOr(`/proc/${pid}/cmdline`, '').split('\0').filter(Boolean).join(' ') || stat.slice(stat.indexOf('(') + 1, close);
  return { pid, ppid: Number(ppid), state: state ?? '?', command };
}

/** The TypeScript loader's compiler service: started on demand, it lives as long as this process. */
function isLoaderService(p: ProcessInfo): boolean {
  return p.ppid === process.pid && /\/esbuild --service=/.test(p.command);
}

function ownProcesses(): string[] {
  const all = listDir('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  const infos = all.map(processInfo).filter((p): p is ProcessInfo => p !== undefined);
  const children = new Map<number, ProcessInfo[]>();
  for (const p of infos) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const own = new Map<number, ProcessInfo>();
  const addTree = (p: ProcessInfo) => {
    if (own.has(p.pid)) return;
    own.set(p.pid, p);
    for (const c of children.get(p.pid) ?? []) addTree(c);
  };
  for (const c of children.get(process.pid) ?? []) if (!isLoaderService(c)) addTree(c);
  const marker = `${OWNER_ENV}=${process.pid}`;
  for (const p of infos) {
    if (p.pid !== process.pid && readOr(`/proc/${p.pid}/environ`, '').split('\0').includes(marker)) addTree(p);
  }
  return [...own.values()].filter((p) => p.state !== 'Z').map((p) => `pid ${p.pid}: ${p.command}`);
}

function ownNetns(): string[] {
  return listDir('/run/netns').filter((name) => taggedName.test(name) || trackedNetns.has(name));
}

/** cgroup directories below a `sandfleet` group, in the unified and in every v1 hierarchy. */
function ownCgroups(): string[] {
  const roots = ['/sys/fs/cgroup', ...listDir('/sys/fs/cgroup').map((h) => `/sys/fs/cgroup/${h}`)];
  const found: string[] = [];
  for (const root of roots) {
    const parent = `${root}/sandfleet`;
    for (const name of listDir(parent)) {
      if (taggedName.test(name)) found.push(`${parent}/${name}`);
    }
  }
  return found;
}

function ownMounts(): string[] {
  const dirs = tempDirsEverMade();
  return readOr('/proc/self/mountinfo', '')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mountPoint): mountPoint is string => !!mountPoint)
    .filter((mountPoint) => taggedName.test(mountPoint) || dirs.some((dir) => mountPoint === dir || mountPoint.startsWith(`${dir}/`)));
}

export function takeLeakSnapshot(): LeakSnapshot {
  return { processes: ownProcesses(), netns: ownNetns(), cgroups: ownCgroups(), mounts: ownMounts(), tempDirs: remainingTempDirs() };
}

/** What `after` has that `before` had not, kind by kind; empty kinds are left out. */
export function leaksBetween(before: LeakSnapshot, after: LeakSnapshot): Partial<LeakSnapshot> {
  const leaks: Partial<LeakSnapshot> = {};
  for (const kind of Object.keys(after) as (keyof LeakSnapshot)[]) {
    const known = new Set(before[kind]);
    // A process is compared by pid alone: its command line may change (exec) between snapshots.
    const key = (entry: string) => (kind === 'processes' ? entry.split(':')[0]! : entry);
    const knownKeys = new Set([...known].map(key));
    const added = after[kind].filter((entry) => !knownKeys.has(key(entry)));
    if (added.length > 0) leaks[kind] = added;
  }
  return leaks;
}

export class LeakError extends Error {
  constructor(readonly leaks: Partial<LeakSnapshot>) {
    const lines = Object.entries(leaks).flatMap(([kind, entries]) => [`${kind}:`, ...entries.map((e) => `  ${e}`)]);
    super(`the test file left these behind:\n${lines.join('\n')}`);
    this.name = 'LeakError';
  }
}

/**
 * Throws LeakError if something attributable to this process appeared since `before` and is
 * still there after `settleMs` (processes being reaped and unmounts in flight get that long).
 */
export async function assertNoLeaks(before: LeakSnapshot, settleMs = 3_000): Promise<void> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const leaks = leaksBetween(before, takeLeakSnapshot());
    if (Object.keys(leaks).length === 0) return;
    if (Date.now() >= deadline) throw new LeakError(leaks);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
