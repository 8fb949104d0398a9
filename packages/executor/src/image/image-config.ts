import fs from 'node:fs';

/** The parts of an OCI image config that decide how a step runs. */
export interface ImageConfig {
  /** `User` as written in the image (`""`, `app`, `1000`, `1000:1000`, `app:staff`). */
  user: string;
  env: string[];
  workingDir: string;
}

export function parseImageConfig(json: unknown): ImageConfig {
  const config = (json as { config?: { User?: string; Env?: string[] | null; WorkingDir?: string } } | null)?.config ?? {};
  return { user: config.User ?? '', env: config.Env ?? [], workingDir: config.WorkingDir ?? '' };
}

/** Image ids live in [0, 65536): the user namespaces map exactly that range onto the host. */
const ID_LIMIT = 65_536;

export class ImageUserError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'ImageUserError';
  }
}

/**
 * A uid/gid as written in `User` or /etc/passwd, /etc/group. Outside [0, 65536) an id is not
 * mapped into the sandbox at all, and 4294967295 (-1) even means "leave as is" (root) to setpriv.
 */
function imageId(text: string | undefined, what: string): number {
  const value = /^\d{1,10}$/.test(text ?? '') ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < 0 || value >= ID_LIMIT) {
    throw new ImageUserError(`image ${what} ${JSON.stringify(String(text ?? '').slice(0, 40))} is not an id in [0, ${ID_LIMIT})`);
  }
  return value;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  home: string;
}

/**
 * Resolves an image's `User` against the image's own /etc/passwd and /etc/group, as Docker does:
 * names are looked up, numbers are taken as they are, a missing group is the user's primary group.
 * The files are read inside the rootfs (`readInRoot`): their symlinks never lead to a host file.
 */
export function resolveUser(rootfs: string, user: string): ResolvedUser {
  const [userPart = '', groupPart] = user.split(':');
  const passwd = readTable(rootfs, 'etc/passwd');
  const groups = readTable(rootfs, 'etc/group');
  let uid = 0;
  let gid: number | undefined;
  let home = '/';
  if (userPart === '' || userPart === 'root') {
    uid = 0;
    const row = passwd.find((r) => r[2] === '0');
    gid = row ? imageId(row[3], 'group of root in /etc/passwd') : 0;
    home = row?.[5] || '/root';
  } else if (/^\d+$/.test(userPart)) {
    uid = imageId(userPart, 'user');
    const row = passwd.find((r) => r[2] === userPart);
    if (row) {
      gid = imageId(row[3], `group of user ${uid} in /etc/passwd`);
      home = row[5] || '/';
    }
  } else {
    const row = passwd.find((r) => r[0] === userPart);
    if (!row) throw new Error(`image user "${userPart}" is not in the image's /etc/passwd`);
    uid = imageId(row[2], `uid of "${userPart}" in /etc/passwd`);
    gid = imageId(row[3], `gid of "${userPart}" in /etc/passwd`);
    home = row[5] || '/';
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (/^\d+$/.test(groupPart)) gid = imageId(groupPart, 'group');
    else {
      const row = groups.find((r) => r[0] === groupPart);
      if (!row) throw new Error(`image group "${groupPart}" is not in the image's /etc/group`);
      gid = imageId(row[2], `gid of group "${groupPart}" in /etc/group`);
    }
  }
  return { uid, gid: gid ?? uid, home };
}

function readTable(rootfs: string, rel: string): string[][] {
  const text = readInRoot(rootfs, rel, MAX_TABLE_BYTES);
  return text === undefined ? [] : text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/** /etc/passwd and /etc/group larger than this are refused (a real one is a few KiB). */
const MAX_TABLE_BYTES = 4 * 1024 * 1024;
const MAX_SYMLINKS = 40;

/**
 * Reads `rel` as a process chrooted into `rootfs` would (openat2's RESOLVE_IN_ROOT): symbolic
 * links are followed by hand, an absolute target restarts at the rootfs and `..` never climbs
 * above it, so a link such as `/etc/passwd -> /etc/shadow` reads the image's own file, never the
 * host's. Each component is opened with O_NOFOLLOW relative to the directory before it (through
 * /proc/self/fd), so nothing is resolved by path twice. Undefined when the file does not exist.
 */
export function readInRoot(rootfs: string, rel: string, maxBytes: number): string | undefined {
  const what = `the image's /${rel}`;
  const dirs = [fs.openSync(rootfs, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)];
  const closeAll = () => {
    for (const fd of dirs.splice(0)) fs.closeSync(fd);
  };
  try {
    let pending = rel.split('/').filter((c) => c !== '' && c !== '.');
    let links = 0;
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === '..') {
        if (dirs.length > 1) fs.closeSync(dirs.pop()!);
        continue;
      }
      const at = `/proc/self/fd/${dirs.at(-1)!}/${name}`;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(at);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
        throw err;
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) throw new ImageUserError(`${what}: too many levels of symbolic links`);
        const target = fs.readlinkSync(at);
        const parts = target.split('/').filter((c) => c !== '' && c !== '.');
        if (target.startsWith('/')) {
          while (dirs.length > 1) fs.closeSync(dirs.pop()!);
        }
        pending = [...parts, ...pending];
        continue;
      }
      const last = pending.length === 0;
      if (!last) {
        if (!st.isDirectory()) return undefined;
        dirs.push(fs.openSync(at, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW));
        continue;
      }
      // O_NONBLOCK: a FIFO must not hang the executor; anything but a regular file is refused below.
      const fd = fs.openSync(at, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      try {
        const opened = fs.fstatSync(fd);
        if (!opened.isFile()) throw new ImageUserError(`${what} is not a regular file`);
        if (opened.size > maxBytes) throw new ImageUserError(`${what} is larger than ${maxBytes} bytes`);
        return fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
    }
    throw new ImageUserError(`${what} is a directory`);
  } finally {
    closeAll();
  }
}

/** The step environment: image Env, then the step's own pairs (later wins), PATH defaulted. */
export function mergeEnv(imageEnv: string[], stepEnv: string[], home: string): string[] {
  const map = new Map<string, string>();
  map.set('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  map.set('HOME', home);
  for (const pair of [...imageEnv, ...stepEnv]) {
    const eq = pair.indexOf('=');
    if (eq > 0) map.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return [...map].map(([k, v]) => `${k}=${v}`);
}
