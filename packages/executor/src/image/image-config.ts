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
    gid = row ? Number(row[3]) : 0;
    home = row?.[5] || '/root';
  } else if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const row = passwd.find((r) => r[2] === userPart);
    if (row) {
      gid = Number(row[3]);
      home = row[5] || '/';
    }
  } else {
    const row = passwd.find((r) => r[0] === userPart);
    if (!row) throw new Error(`image user "${userPart}" is not in the image's /etc/passwd`);
    uid = Number(row[2]);
    gid = Number(row[3]);
    home = row[5] || '/';
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const row = groups.find((r) => r[0] === groupPart);
      if (!row) throw new Error(`image group "${groupPart}" is not in the image's /etc/group`);
      gid = Number(row[2]);
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
