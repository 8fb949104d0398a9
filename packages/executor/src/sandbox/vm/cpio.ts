/**
 * A deterministic cpio "newc" archive (the initramfs format): entries sorted by path, inode numbers
 * by position, owner root, mtime 0, so the same files always give the same bytes.
 */
export type CpioEntry =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; mode: number; data: Buffer }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'char'; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function record(ino: number, mode: number, nlink: number, data: Buffer, name: string, rdev: [number, number] = [0, 0]): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [ino, mode, 0, 0, nlink, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'latin1');
  return [header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length)];
}

export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  sorted.forEach((e, i) => {
    const ino = i + 1;
    if (e.type === 'dir') parts.push(...record(ino, S_IFDIR | e.mode, 2, Buffer.alloc(0), e.path));
    else if (e.type === 'file') parts.push(...record(ino, S_IFREG | e.mode, 1, e.data, e.path));
    else if (e.type === 'symlink') parts.push(...record(ino, S_IFLNK | 0o777, 1, Buffer.from(e.target), e.path));
    else parts.push(...record(ino, S_IFCHR | e.mode, 1, Buffer.alloc(0), e.path, [e.major, e.minor]));
  });
  parts.push(...record(0, 0, 1, Buffer.alloc(0), 'TRAILER!!!'));
  return Buffer.concat(parts);
}
