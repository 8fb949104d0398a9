import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { privateDir } from '../../image/private-dir.js';
import { capture } from '../../process/run.js';
import { SYSTEM_PATH } from '../shared/host.js';

/**
 * The microVM's disks, made on the host without mounting anything: `mkfs.ext4 -d <dir>` copies a
 * directory tree (owners, modes, links, device nodes) into a fresh filesystem in a sparse file.
 */
export class VmDiskError extends SandfleetError {}

const MiB = 1024 * 1024;
/** Slack for ext4's own metadata (group descriptors, bitmaps, inode tables, root directories). */
const IMAGE_DISK_SLACK = 32 * MiB;

/** A filesystem of `fsBytes` (default: the whole file) at the start of a sparse file of `fileBytes`. */
async function mkfs(file: string, fileBytes: number, args: string[], fsBytes = fileBytes): Promise<void> {
  const fh = await fs.open(file, 'wx', 0o600);
  try {
    await fh.truncate(fileBytes);
  } finally {
    await fh.close();
  }
  // No journal: a scratch disk thrown away with the VM, or a read-only one.
  const argv = ['mkfs.ext4', '-q', '-F', '-m', '0', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard', ...args, file, ...(fsBytes < fileBytes ? [`${Math.floor(fsBytes / 1024)}k`] : [])];
  const r = await capture(argv, { env: { PATH: SYSTEM_PATH } });
  if (r.exitCode !== 0) throw new VmDiskError(`${argv.join(' ')} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
}

/**
 * The job's workspace as its own ext4 disk of `sizeBytes` (sparse), holding what the host-side
 * preparation wrote into `workspaceDir`. The file is 0600 in the caller's 0700 VM directory.
 */
export async function makeWorkspaceDisk(workspaceDir: string, file: string, sizeBytes: number): Promise<void> {
  try {
    await mkfs(file, sizeBytes, ['-d', workspaceDir]);
  } catch (err) {
    await fs.rm(file, { force: true });
    if (err instanceof VmDiskError && /Could not allocate|No space|too small|not enough/i.test(err.message)) {
      throw new VmDiskError(`the workspace does not fit in its ${Math.round(sizeBytes / MiB)} MiB disk (EXECUTOR_FIRECRACKER_DISK_SPACE): ${err.message}`);
    }
    throw err;
  }
}

/** Bytes and inodes a tree needs on ext4 with 4 KiB blocks (rounded up per file, never following links). */
async function treeFootprint(root: string): Promise<{ bytes: number; inodes: number }> {
  let bytes = 0;
  let inodes = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      inodes++;
      const p = path.join(dir, entry.name);
      const st = await fs.lstat(p);
      bytes += Math.ceil(st.size / 4096) * 4096 + 4096;
      if (entry.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return { bytes, inodes };
}

/** Where the image root disks live: next to the unpacked roots, in the image store's 0700 directory. */
export function imageDiskDir(imageStateDir: string): string {
  return path.join(imageStateDir, 'images', 'vm-disks');
}

const building = new Map<string, Promise<string>>();

/**
 * Every image disk is this big (sparse; its filesystem is only as big as the image needs), so a
 * saved guest's image slots fit any image: a warm-started VM gets the job's disks in place of the
 * placeholders it was saved with, and the guest kernel keeps the size it saw then.
 */
export const IMAGE_SLOT_BYTES = 32 * 1024 * MiB;

/**
 * A read-only ext4 disk holding the unpacked image root `rootfs` (ids as in the image), made once
 * per image and kept under `imageDiskDir` by the rootfs's content key (its directory name), in a
 * file of IMAGE_SLOT_BYTES.
 */
export function imageRootDisk(imageStateDir: string, rootfs: string): Promise<string> {
  const key = path.basename(rootfs);
  if (!/^[0-9a-f]{64}$/.test(key)) throw new VmDiskError(`unexpected image root ${rootfs}`);
  const dir = imageDiskDir(imageStateDir);
  const file = path.join(dir, `${key}.slot.ext4`);
  let pending = building.get(file);
  if (!pending) {
    pending = (async () => {
      await privateDir(dir);
      if (await fs.stat(file).then(() => true, () => false)) return file;
      const { bytes, inodes } = await treeFootprint(rootfs);
      const tmp = path.join(dir, `.tmp-${key}-${randomBytes(4).toString('hex')}`);
      try {
        const fsBytes = Math.ceil((bytes * 1.1 + IMAGE_DISK_SLACK) / MiB) * MiB;
        if (fsBytes > IMAGE_SLOT_BYTES) throw new VmDiskError(`the image needs a ${Math.round(fsBytes / MiB)} MiB disk; a VM's image disks hold at most ${IMAGE_SLOT_BYTES / MiB} MiB`);
        await mkfs(tmp, IMAGE_SLOT_BYTES, ['-N', String(inodes + 1024), '-d', rootfs], fsBytes);
        // Readable by all inside the 0700 store: a jailed Firecracker is then given a hard link
        // (its uid can read it) instead of a copy of a 32 GiB sparse file.
        await fs.chmod(tmp, 0o644);
        await fs.rename(tmp, file);
      } finally {
        await fs.rm(tmp, { force: true });
      }
      return file;
    })().finally(() => building.delete(file));
    building.set(file, pending);
  }
  return pending;
}

/** A sparse, empty file of `bytes`: what a saved guest's disk slot holds until a job's disk takes its place. */
export async function placeholderDisk(file: string, bytes: number): Promise<void> {
  if (await fs.stat(file).then((st) => st.size === bytes && (st.mode & 0o777) === 0o644, () => false)) return;
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  // Zeros, readable by all (inside its 0700 directory), so a confined VMM can be given a link.
  const fh = await fs.open(tmp, 'wx', 0o644);
  try {
    await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
  await fs.chmod(tmp, 0o644);
  await fs.rename(tmp, file);
}
