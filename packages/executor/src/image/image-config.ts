import fs from 'node:fs';
import path from 'node:path';

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
 * Files are read without following symlinks out of the rootfs (they are plain reads of two files).
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
  const file = path.join(rootfs, rel);
  try {
    // An image may make /etc a symlink; never read a file that resolves outside its rootfs.
    const real = fs.realpathSync(file);
    if (!real.startsWith(fs.realpathSync(rootfs) + path.sep) || !fs.statSync(real).isFile()) return [];
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
  } catch {
    return [];
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
