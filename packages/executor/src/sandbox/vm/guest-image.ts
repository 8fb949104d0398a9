import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { capture } from '../../process/run.js';
import { SYSTEM_PATH } from '../shared/host.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { dynamicLinking } from './elf.js';
import { AGENT_SCRIPT, INIT_SCRIPT } from './guest-scripts.js';
import { extractVmlinux } from './kernel.js';

/**
 * The microVM guest: Debian's cloud kernel as a PVH-bootable `vmlinux`, and an initramfs holding
 * busybox, the virtio modules and the agent. Built from Debian packages only and stored under
 * `<images dir>/<input digest>/`, so a second build of the same packages is a cache hit, and the
 * output digest lets anyone check that a rebuild gave the same bytes.
 */
export const KERNEL_PACKAGE = 'linux-image-cloud-amd64';
export const BUSYBOX_PACKAGE = 'busybox-static';
/**
 * The guest's vsock listener: Firecracker offers the agent no channel but vsock, and busybox has
 * no vsock tool. socat comes with the shared libraries it links (read from its ELF headers), taken
 * from its Debian dependencies.
 */
export const VSOCK_TOOL_PACKAGE = 'socat';
export const VSOCK_TOOL_PATH = 'usr/bin/socat';
/** Changes whenever the build itself changes, so old cache entries are not reused. */
const BUILD_FORMAT = 'sandfleet-vm-guest/4';
/**
 * What the guest needs as modules: virtio-mmio transport (microvm), virtio-serial ports (the agent
 * channel under QEMU), virtio-blk (workspace and image disks), overlayfs (each step's writable
 * root), the NIC a VM with a network gets (virtio_net, which pulls in net_failover and failover)
 * and virtio vsock (the agent channel under Firecracker). ext4 and crc32c are built into Debian's
 * cloud kernel.
 */
export const GUEST_MODULES = ['virtio_mmio', 'virtio_console', 'virtio_blk', 'overlay', 'virtio_net', 'vmw_vsock_virtio_transport'];
/**
 * Loaded only when the kernel command line asks for the vsock loopback bridge (see INIT_SCRIPT):
 * vsock inside the guest alone, for hosts without a vsock device to test the vsock agent on.
 */
export const LOOPBACK_MODULES = ['vsock_loopback'];

export class GuestImageError extends SandfleetError {}

export interface GuestPackages {
  kernelDeb: string;
  busyboxDeb: string;
  /** socat and the packages it depends on, recursively. */
  vsockToolDebs: string[];
}

export interface GuestImage {
  dir: string;
  kernelPath: string;
  initrdPath: string;
  kernelRelease: string;
  /** sha256 over the packages and the build recipe: the cache key. */
  inputDigest: string;
  /** sha256 over the kernel and the initramfs. */
  outputDigest: string;
}

interface Manifest {
  format: string;
  kernelRelease: string;
  inputDigest: string;
  outputDigest: string;
  packages: Record<string, string>;
}

const ENV = { PATH: SYSTEM_PATH };

function sha256(...parts: (Buffer | string)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? `${p.length}:${p}` : p);
  return h.digest('hex');
}

async function run(argv: string[], cwd?: string): Promise<string> {
  const r = await capture(argv, { env: ENV, ...(cwd ? { cwd } : {}) });
  if (r.exitCode !== 0) throw new GuestImageError(`${argv.join(' ')} exited ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

/** Downloads `pkgs` with one apt-get call and returns each one's .deb, in order. */
async function download(pkgs: string[], dir: string): Promise<string[]> {
  await run(['apt-get', 'download', '-q', ...pkgs], dir);
  const files = fs.readdirSync(dir);
  return pkgs.map((pkg) => {
    const name = files.filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb')).sort().at(-1);
    if (!name) throw new GuestImageError(`apt-get download ${pkg} left no .deb in ${dir}`);
    return path.join(dir, name);
  });
}

/**
 * Downloads the current kernel (the versioned package `linux-image-cloud-amd64` depends on),
 * busybox-static, and socat with its dependencies, with apt, into a fresh `dir`. apt checks them
 * against the signed archive lists.
 */
export async function downloadGuestPackages(dir: string): Promise<GuestPackages> {
  fs.mkdirSync(dir, { recursive: true });
  const [meta] = await download([KERNEL_PACKAGE], dir);
  const depends = (await run(['dpkg-deb', '-f', meta!, 'Depends'])).trim();
  const kernelPackage = /^(linux-image-[a-z0-9.+-]+)/.exec(depends)?.[1];
  if (!kernelPackage) throw new GuestImageError(`${KERNEL_PACKAGE} depends on "${depends}", not a linux-image package`);
  const vsockTool = await dependencyClosure(VSOCK_TOOL_PACKAGE);
  const [kernelDeb, busyboxDeb, ...vsockToolDebs] = await download([kernelPackage, BUSYBOX_PACKAGE, ...vsockTool], dir);
  return { kernelDeb: kernelDeb!, busyboxDeb: busyboxDeb!, vsockToolDebs };
}

/** `pkg` and every package it depends on, recursively (no recommends, no virtual packages), sorted. */
async function dependencyClosure(pkg: string): Promise<string[]> {
  const out = await run(['apt-cache', 'depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', '--no-pre-depends', pkg]);
  const names = out.split('\n').filter((l) => /^[a-z0-9][a-z0-9.+-]*$/.test(l));
  if (!names.includes(pkg)) throw new GuestImageError(`apt-cache depends ${pkg} did not list ${pkg}`);
  return [...new Set(names)].sort();
}

/** A path inside `root`, following symlinks (relative or absolute) without leaving `root`. */
function resolveInTree(root: string, inTree: string, hops = 0): string | undefined {
  const full = path.join(root, inTree);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(full);
  } catch {
    return undefined;
  }
  if (!st.isSymbolicLink()) return st.isFile() ? full : undefined;
  if (hops > 8) throw new GuestImageError(`too many symlinks at ${inTree}`);
  const target = fs.readlinkSync(full);
  return resolveInTree(root, target.startsWith('/') ? target : path.posix.join(path.posix.dirname(inTree), target), hops + 1);
}

const LIBRARY_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'lib', 'usr/lib'];
const GUEST_LIBRARY_DIR = 'lib/x86_64-linux-gnu';

/**
 * The program at `program` in the unpacked tree `root`, with its interpreter and every library it
 * needs (transitively), as initramfs entries: libraries go to /lib/x86_64-linux-gnu under their
 * sonames, where the dynamic loader looks without a cache.
 */
export function programWithLibraries(root: string, program: string): CpioEntry[] {
  const file = resolveInTree(root, program);
  if (!file) throw new GuestImageError(`${program} is not in the unpacked packages`);
  const first = dynamicLinking(fs.readFileSync(file));
  const entries: CpioEntry[] = [{ path: program, type: 'file', mode: 0o755, data: fs.readFileSync(file) }];
  if (first.interpreter) {
    const interp = resolveInTree(root, first.interpreter);
    if (!interp) throw new GuestImageError(`${program}'s interpreter ${first.interpreter} is not in the unpacked packages`);
    entries.push({ path: first.interpreter.replace(/^\/+/, ''), type: 'file', mode: 0o755, data: fs.readFileSync(interp) });
  }
  const done = new Set<string>([path.basename(first.interpreter ?? '')]);
  const pending = [...first.needed];
  while (pending.length) {
    const soname = pending.shift()!;
    if (done.has(soname)) continue;
    done.add(soname);
    const lib = LIBRARY_DIRS.map((d) => resolveInTree(root, path.posix.join(d, soname))).find(Boolean);
    if (!lib) throw new GuestImageError(`${program} needs ${soname}, which no unpacked package provides`);
    const data = fs.readFileSync(lib);
    pending.push(...dynamicLinking(data).needed);
    entries.push({ path: path.posix.join(GUEST_LIBRARY_DIR, soname), type: 'file', mode: 0o644, data });
  }
  return entries;
}

/** The modules `wanted` need, dependencies first, read from each module's `depends=` field. */
export function moduleLoadOrder(moduleFiles: ReadonlyMap<string, string>, wanted: readonly string[]): string[] {
  const order: string[] = [];
  const visit = (name: string, chain: string[]): void => {
    if (order.includes(name)) return;
    if (chain.includes(name)) throw new GuestImageError(`module dependency cycle: ${[...chain, name].join(' → ')}`);
    const file = moduleFiles.get(name);
    if (!file) throw new GuestImageError(`kernel module ${name} is not in the kernel package`);
    const depends = /\0depends=([^\0]*)\0/.exec(fs.readFileSync(file).toString('latin1'))?.[1] ?? '';
    for (const dep of depends.split(',').filter(Boolean)) visit(dep.replaceAll('-', '_'), [...chain, name]);
    order.push(name);
  };
  for (const name of wanted) visit(name, []);
  return order;
}

/** Every `.ko` below `root` by module name (dashes as underscores, as the kernel names them). */
export function kernelModules(root: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const entry of fs.readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.ko')) found.set(entry.name.slice(0, -3).replaceAll('-', '_'), path.join(entry.parentPath, entry.name));
  }
  return found;
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

function imageFrom(dir: string, m: Manifest): GuestImage {
  return { dir, kernelPath: path.join(dir, 'vmlinux'), initrdPath: path.join(dir, 'initramfs.cpio'), kernelRelease: m.kernelRelease, inputDigest: m.inputDigest, outputDigest: m.outputDigest };
}

/**
 * Moves a finished build into place. Another build of the same inputs may have won the race; its
 * image is then used (it is the same bytes) rather than replaced under a VM that may be using it.
 */
function publish(built: string, finalDir: string, manifest: Manifest): GuestImage & { cached: boolean } {
  try {
    fs.renameSync(built, finalDir);
    return { ...imageFrom(finalDir, manifest), cached: false };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
  const existing = readManifest(finalDir);
  if (existing?.inputDigest === manifest.inputDigest) return { ...imageFrom(finalDir, existing), cached: true };
  fs.rmSync(finalDir, { recursive: true, force: true });
  fs.renameSync(built, finalDir);
  return { ...imageFrom(finalDir, manifest), cached: false };
}

/** Builds (or finds in `imagesDir`) the guest image for these packages. */
export async function buildGuestImage(packages: GuestPackages, imagesDir: string): Promise<GuestImage & { cached: boolean }> {
  const kernelDeb = fs.readFileSync(packages.kernelDeb);
  const busyboxDeb = fs.readFileSync(packages.busyboxDeb);
  const vsockToolDebs = packages.vsockToolDebs.map((f) => fs.readFileSync(f));
  const inputDigest = sha256(BUILD_FORMAT, kernelDeb, busyboxDeb, ...vsockToolDebs, INIT_SCRIPT, AGENT_SCRIPT, GUEST_MODULES.join(','), LOOPBACK_MODULES.join(','));
  const finalDir = path.join(imagesDir, inputDigest);
  const existing = readManifest(finalDir);
  if (existing?.inputDigest === inputDigest) return { ...imageFrom(finalDir, existing), cached: true };

  fs.mkdirSync(imagesDir, { recursive: true, mode: 0o700 });
  const work = fs.mkdtempSync(path.join(imagesDir, '.build-'));
  try {
    const unpacked = path.join(work, 'unpacked');
    await run(['dpkg-deb', '-x', packages.kernelDeb, unpacked]);
    await run(['dpkg-deb', '-x', packages.busyboxDeb, unpacked]);
    const vsockTool = path.join(work, 'vsock-tool');
    for (const deb of packages.vsockToolDebs) await run(['dpkg-deb', '-x', deb, vsockTool]);
    const boot = fs.readdirSync(path.join(unpacked, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!boot) throw new GuestImageError(`${path.basename(packages.kernelDeb)} has no /boot/vmlinuz-*`);
    const kernelRelease = boot.slice('vmlinuz-'.length);
    const vmlinux = extractVmlinux(fs.readFileSync(path.join(unpacked, 'boot', boot)));

    const modules = kernelModules(path.join(unpacked, 'lib', 'modules', kernelRelease));
    const order = moduleLoadOrder(modules, GUEST_MODULES);
    const loopbackOrder = moduleLoadOrder(modules, [...GUEST_MODULES, ...LOOPBACK_MODULES]).filter((m) => !order.includes(m));
    const entries: CpioEntry[] = [
      ...['bin', 'data', 'dev', 'etc', 'lib', 'lib/modules', GUEST_LIBRARY_DIR, 'lib64', 'mnt', 'proc', 'run', 'sbin', 'sys', 'tmp', 'usr', 'usr/bin', 'usr/sbin'].map((p) => ({ path: p, type: 'dir' as const, mode: 0o755 })),
      // The kernel opens /dev/console for init before anything is mounted.
      { path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 },
      { path: 'bin/busybox', type: 'file', mode: 0o755, data: fs.readFileSync(path.join(unpacked, 'bin', 'busybox')) },
      { path: 'bin/sh', type: 'symlink', target: 'busybox' },
      { path: 'init', type: 'file', mode: 0o755, data: Buffer.from(INIT_SCRIPT) },
      { path: 'sbin/sandfleet-agent', type: 'file', mode: 0o755, data: Buffer.from(AGENT_SCRIPT) },
      { path: 'etc/modules-order', type: 'file', mode: 0o644, data: Buffer.from(`${order.join('\n')}\n`) },
      { path: 'etc/modules-loopback', type: 'file', mode: 0o644, data: Buffer.from(`${loopbackOrder.join('\n')}\n`) },
      ...[...order, ...loopbackOrder].map((m) => ({ path: `lib/modules/${m}.ko`, type: 'file' as const, mode: 0o644, data: fs.readFileSync(modules.get(m)!) })),
      ...programWithLibraries(vsockTool, VSOCK_TOOL_PATH),
    ];
    const initramfs = writeCpio(entries);
    const manifest: Manifest = {
      format: BUILD_FORMAT,
      kernelRelease,
      inputDigest,
      outputDigest: sha256(vmlinux, initramfs),
      packages: { kernel: path.basename(packages.kernelDeb), busybox: path.basename(packages.busyboxDeb), vsockTool: packages.vsockToolDebs.map((f) => path.basename(f)).join(' ') },
    };
    const out = path.join(work, 'image');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'vmlinux'), vmlinux, { mode: 0o644 });
    fs.writeFileSync(path.join(out, 'initramfs.cpio'), initramfs, { mode: 0o644 });
    fs.writeFileSync(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
    return publish(out, finalDir, manifest);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Where `executor install vm-image` puts guest images. */
export function guestImagesDir(stateDir: string): string {
  return path.join(stateDir, 'vm-images');
}

/** Downloads the packages and builds the guest image, keeping the downloads under `imagesDir/packages`. */
export async function ensureGuestImage(imagesDir: string): Promise<GuestImage & { cached: boolean }> {
  const downloads = path.join(imagesDir, 'packages');
  fs.rmSync(downloads, { recursive: true, force: true });
  const packages = await downloadGuestPackages(downloads);
  return buildGuestImage(packages, imagesDir);
}

/**
 * The image `executor install vm-image` last installed under `imagesDir` (named by its `current`
 * file), or why there is none.
 */
export function installedGuestImage(imagesDir: string): { image: GuestImage } | { missing: string } {
  let digest: string;
  try {
    digest = fs.readFileSync(path.join(imagesDir, 'current'), 'utf8').trim();
  } catch {
    return { missing: `no guest image installed in ${imagesDir} (run \`executor install vm-image\`)` };
  }
  const dir = path.join(imagesDir, digest);
  const manifest = /^[0-9a-f]{64}$/.test(digest) ? readManifest(dir) : undefined;
  if (!manifest || manifest.inputDigest !== digest) return { missing: `the installed guest image ${dir} is incomplete (run \`executor install vm-image\` again)` };
  const image = imageFrom(dir, manifest);
  for (const f of [image.kernelPath, image.initrdPath]) {
    if (!fs.existsSync(f)) return { missing: `the installed guest image lacks ${f} (run \`executor install vm-image\` again)` };
  }
  return { image };
}

/** The output digest as a build computes it, over the image's kernel and initramfs as they are now. */
export function guestImageOutputDigest(image: Pick<GuestImage, 'kernelPath' | 'initrdPath'>): string {
  return sha256(fs.readFileSync(image.kernelPath), fs.readFileSync(image.initrdPath));
}
