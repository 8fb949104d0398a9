import path from 'node:path';
import { shellQuote } from '../oci/image-sandbox.js';

/**
 * The shell the host sends the guest agent (over the agent channel, never QEMU's argv) to set up
 * a job's disks and to run each step in its image root. The guest runs them as its root; what a
 * step can reach is the VM, which holds nothing but this job.
 */

/** The workspace disk's serial; image disks are `sf-img0`, `sf-img1`, … */
export const WORKSPACE_SERIAL = 'sf-ws';
export const imageSerial = (index: number): string => `sf-img${index}`;

/**
 * How the guest tells its disks apart. QEMU gives each virtio-blk disk a serial. Firecracker has
 * none to give (its device id is derived from the backing file), but attaches drives in the order
 * they were configured, which the guest sees as vda, vdb, …
 */
export type DiskNaming = 'serial' | 'order';

const DEV_BY_SERIAL = `dev_of() { for b in /sys/block/vd*; do [ "$(cat "$b/serial" 2>/dev/null)" = "$1" ] && { echo "/dev/\${b##*/}"; return 0; }; done; echo "no disk with serial $1" >&2; return 1; }`;
/** `dev_of <position>`: the position's vd name. */
const DEV_BY_ORDER = `dev_of() { set -- $(echo abcdefghijklmnopqrstuvwxyz | cut -c$(($1 + 1))); [ -b "/dev/vd$1" ] || { echo "no disk /dev/vd$1" >&2; return 1; }; echo "/dev/vd$1"; }`;
/** The host knows each disk's size: a disk in the wrong place (or missing) stops the job before anything mounts. */
const CHECK_SIZE = `check_size() { n=\${1#/dev/}; [ "$(($(cat /sys/block/$n/size) * 512))" = "$2" ] || { echo "$1 is $(($(cat /sys/block/$n/size) * 512)) bytes, expected $2" >&2; return 1; }; }`;

/**
 * Mounts the workspace disk at /data and image disk i read-only at /mnt/img<i>. `sizes` are the
 * disks' sizes in bytes, workspace first, as attached.
 */
export function setupScript(imageCount: number, naming: DiskNaming, sizes: readonly number[]): string {
  if (sizes.length !== imageCount + 1) throw new RangeError(`setupScript: ${sizes.length} sizes for ${imageCount + 1} disks`);
  const ref = (i: number) => (naming === 'order' ? String(i) : i === 0 ? WORKSPACE_SERIAL : imageSerial(i - 1));
  const lines = ['set -e', naming === 'order' ? DEV_BY_ORDER : DEV_BY_SERIAL, CHECK_SIZE];
  // A guest restored from a saved state may hold the placeholder's blocks in its cache: drop them.
  for (let i = 0; i <= imageCount; i++) lines.push(`d${i}=$(dev_of ${ref(i)})`, `check_size "$d${i}" ${sizes[i]}`, `blockdev --flushbufs "$d${i}"`);
  lines.push(
    'mount -t ext4 -o nosuid,nodev "$d0" /data',
    // mkfs made it; the workspace is the job's files only.
    'rmdir /data/lost+found 2>/dev/null || true',
  );
  for (let i = 0; i < imageCount; i++) lines.push(`mkdir -p /mnt/img${i}`, `mount -t ext4 -o ro,nodev "$d${i + 1}" /mnt/img${i}`);
  return `${lines.join('\n')}\n`;
}

export interface GuestStep {
  /** Unique per job: names the step's scratch directory. */
  name: string;
  imageIndex: number;
  uid: number;
  gid: number;
  /** `NAME=value`, image Env then step env. */
  env: string[];
  /** In-root absolute paths. */
  cwd: string;
  script: string;
  /** Bytes for the step's writable root (tmpfs upper) and for its /tmp, each. */
  scratchBytes: number;
}

const ROOT_DIRS = ['data', 'tmp', 'proc', 'dev', 'etc'];

/**
 * One step: drops the previous step's mounts, gives the image root a fresh writable overlay (tmpfs
 * upper), a small /dev, /proc, /tmp and the workspace at /data, then chroots into it as the
 * step's user with only the step's environment (busybox nsenter: -r chroot, -w cwd, -S/-G ids).
 */
export function stepScript(s: GuestStep): string {
  const dir = `/run/steps/${s.name}`;
  const root = `${dir}/root`;
  const q = shellQuote;
  const lines = [
    'set -e',
    'for old in /run/steps/*; do',
    '  [ -d "$old" ] || continue',
    '  for m in data tmp dev proc; do umount -l "$old/root/$m" 2>/dev/null || true; done',
    '  umount -l "$old/root" 2>/dev/null || true; umount -l "$old" 2>/dev/null || true; rmdir "$old" 2>/dev/null || true',
    'done',
    `mkdir -p ${dir}`,
    `mount -t tmpfs -o size=${s.scratchBytes},mode=0700 tmpfs ${dir}`,
    `mkdir ${dir}/upper ${dir}/work ${root}`,
    `mount -t overlay overlay -o lowerdir=/mnt/img${s.imageIndex},upperdir=${dir}/upper,workdir=${dir}/work,nodev ${root}`,
    // Mount points the step needs, in the writable layer; an image's link there is replaced, not followed.
    `for d in ${ROOT_DIRS.join(' ')}; do p=${root}/$d; if [ -L "$p" ] || { [ -e "$p" ] && [ ! -d "$p" ]; }; then rm -rf "$p"; fi; mkdir -p "$p"; done`,
    `mount -t proc -o nosuid,nodev,noexec proc ${root}/proc`,
    `mount -t tmpfs -o size=${s.scratchBytes},mode=1777,nosuid,nodev tmpfs ${root}/tmp`,
    `mount -t tmpfs -o size=64k,mode=0755,nosuid tmpfs ${root}/dev`,
    `cd ${root}/dev && mknod -m 666 null c 1 3 && mknod -m 666 zero c 1 5 && mknod -m 666 full c 1 7 && mknod -m 666 random c 1 8 && mknod -m 666 urandom c 1 9 && mknod -m 666 tty c 5 0`,
    'ln -s /proc/self/fd fd && ln -s fd/0 stdin && ln -s fd/1 stdout && ln -s fd/2 stderr && cd /',
    `mount -o bind /data ${root}/data`,
    `for f in hosts resolv.conf; do rm -rf ${root}/etc/$f; done`,
    `printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost\\n' >${root}/etc/hosts`,
    // The guest's own resolv.conf, which its init wrote from the kernel command line (sandfleet.dns),
    // is the one source: policy none leaves it absent, and the step then gets an empty one.
    `if [ -f /etc/resolv.conf ]; then cat /etc/resolv.conf >${root}/etc/resolv.conf; else : >${root}/etc/resolv.conf; fi`,
    // The workspace belongs to the step's user, as with the other runtimes.
    `[ "$(stat -c %u:%g /data)" = ${s.uid}:${s.gid} ] || chown -R -h ${s.uid}:${s.gid} /data`,
    `exec env -i ${s.env.map(q).join(' ')} /bin/busybox nsenter -F -r${q(root)} -w${q(path.posix.join(root, s.cwd))} -S ${s.uid} -G ${s.gid} /bin/sh ${q(s.script)}`,
  ];
  return `${lines.join('\n')}\n`;
}
