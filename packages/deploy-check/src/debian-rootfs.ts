import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A fresh Debian root filesystem to run a machine's startup script in: built once with
 * debootstrap into a cache directory, then entered through a copy-on-write overlay so every run
 * starts from the same untouched tree. Sessions run in their own mount and PID namespaces (the
 * overlay and every process go away with them) and share the host's network, so apt inside
 * reaches the same Debian mirror the host uses and loopback servers are reachable.
 */

export const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_ROOTFS_CACHE = '/var/cache/sandfleet-test';
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RootfsSpec {
  suite: string;
  mirror: string;
  /** Packages downloaded (not installed) into apt's cache, so a run installs them without fetching them again. */
  predownload: string[];
}

/** The Debian mirror was not reachable: nothing can be built or installed. */
export class DebianMirrorUnreachableError extends Error {
  override readonly name = 'DebianMirrorUnreachableError';
}

/** A command in a session exited non-zero. */
export class RootfsCommandError extends Error {
  override readonly name = 'RootfsCommandError';
  constructor(message: string, readonly output: string) {
    super(message);
  }
}

/** The first Debian archive (not debian-security) in the host's apt sources; the default otherwise. */
export function hostDebianMirror(sourcesDir = '/etc/apt'): string {
  const files = [path.join(sourcesDir, 'sources.list')];
  const listDir = path.join(sourcesDir, 'sources.list.d');
  if (fs.existsSync(listDir)) files.push(...fs.readdirSync(listDir).sort().map((f) => path.join(listDir, f)));
  for (const file of files.filter((f) => fs.existsSync(f))) {
    const text = fs.readFileSync(file, 'utf8');
    const urls = [...text.matchAll(/^URIs:\s*(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    urls.push(...[...text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/gm)].map((m) => m[1]!));
    const archive = urls.find((url) => /^https?:\/\/.+\/debian\/?$/.test(url));
    if (archive) return archive.replace(/\/$/, '');
  }
  return DEFAULT_DEBIAN_MIRROR;
}

/** Throws DebianMirrorUnreachableError unless the suite's Release file can be fetched. */
export async function checkMirror(mirror: string, suite: string, timeoutMs = 20_000): Promise<void> {
  const url = `${mirror}/dists/${suite}/Release`;
  try {
    const response = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new DebianMirrorUnreachableError(`${url} answered ${response.status}`);
  } catch (err) {
    if (err instanceof DebianMirrorUnreachableError) throw err;
    throw new DebianMirrorUnreachableError(`cannot fetch ${url}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`);
  }
}

/** Where the tree for spec is cached: the name changes with anything that changes the tree. */
export function rootfsDir(spec: RootfsSpec, cacheDir = DEFAULT_ROOTFS_CACHE): string {
  const hash = createHash('sha256').update(JSON.stringify({ format: 1, variant: 'minbase', ...spec })).digest('hex').slice(0, 16);
  return path.join(cacheDir, `debian-${spec.suite}-rootfs-${hash}`);
}

/**
 * The cached tree for spec, built first when missing. A build goes to a scratch directory that
 * is renamed into place only once complete, so an interrupted build is never reused.
 */
export async function ensureDebianRootfs(spec: RootfsSpec, options: { cacheDir?: string; log?: (line: string) => void } = {}): Promise<{ dir: string; builtMs?: number }> {
  const dir = rootfsDir(spec, options.cacheDir);
  if (fs.existsSync(path.join(dir, 'etc/debian_version'))) return { dir };
  await checkMirror(spec.mirror, spec.suite);
  const started = Date.now();
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  const scratch = `${dir}.partial-${process.pid}`;
  fs.rmSync(scratch, { recursive: true, force: true });
  try {
    await run(['debootstrap', '--variant=minbase', spec.suite, scratch, spec.mirror], options.log);
    if (spec.predownload.length > 0) {
      await runInRootfs({ lower: scratch }, ['sh', '-c', 'apt-get update -qq && apt-get install -y -qq --download-only --no-install-recommends "$@" && rm -rf /var/lib/apt/lists/*', 'sh', ...spec.predownload], { log: options.log });
    }
    try {
      fs.renameSync(scratch, dir);
    } catch (err) {
      // Another run finished the same tree first: use that one.
      if (!fs.existsSync(path.join(dir, 'etc/debian_version'))) throw err;
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return { dir, builtMs: Date.now() - started };
}

/**
 * The tree a session sees: `lower` alone (changed in place: for building it), or `lower` under
 * the writable `upper` (with its overlayfs `work` directory beside it).
 */
export interface RootfsLayers {
  lower: string;
  upper?: string;
  work?: string;
}

// Runs as root in fresh mount and PID namespaces. The tree is entered with pivot_root, not
// chroot: the kernel refuses user namespaces (bwrap's sandboxes) to a chrooted process.
const SESSION = String.raw`
set -euo pipefail
lower=$1 upper=$2 work=$3 where=$4; shift 4
mount --make-rprivate /
# The mount point lives on a tmpfs of this namespace only: nothing is left on the host's disk.
mount -t tmpfs -o mode=0755 sandfleet-session /mnt
root=/mnt/root
mkdir "$root"
if [ -n "$upper" ]; then
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
else
  mount --bind "$lower" "$root"
fi
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
[ -f "$root/etc/resolv.conf" ] && [ ! -L "$root/etc/resolv.conf" ] || { rm -f "$root/etc/resolv.conf"; : >"$root/etc/resolv.conf"; }
mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
if [ "$where" = host ]; then
  ROOTFS=$root "$@"
  exit
fi
cd "$root"
mkdir -p .host
pivot_root . .host
cd /
umount -l /.host
rmdir /.host
exec env -i PATH="$PATH" HOME=/root LANG=C.UTF-8 "$@"
`;

export interface SessionOptions {
  /** 'inside' (default): argv runs in the tree as its root. 'host': argv is a host command, with $ROOTFS the mounted tree. */
  where?: 'inside' | 'host';
  log?: ((line: string) => void) | undefined;
}

/** Runs argv in a session on layers; resolves with its output, RootfsCommandError on a non-zero exit. */
export function runInRootfs(layers: RootfsLayers, argv: string[], options: SessionOptions = {}): Promise<string> {
  return run(['unshare', '--mount', '--pid', '--fork', '--kill-child', 'bash', '-c', SESSION, 'session', layers.lower, layers.upper ?? '', layers.work ?? '', options.where ?? 'inside', ...argv], options.log);
}

function run(argv: string[], log?: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: SYSTEM_PATH, LANG: 'C.UTF-8' } });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (log) for (const line of chunk.toString().split('\n').filter(Boolean)) log(line);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new RootfsCommandError(`${argv.slice(0, 2).join(' ')}… exited ${code ?? signal}:\n${output}`, output));
    });
  });
}
