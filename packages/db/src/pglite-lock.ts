import fs from 'node:fs/promises';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';

/** Lives inside the data dir; named so it is obviously ours, not PostgreSQL's postmaster.pid. */
export const PGLITE_LOCK_FILE = 'sandfleet.lock';

/** Another live process holds the PGlite data directory. */
export class DataDirInUseError extends SandfleetError {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`PGlite data directory ${dataDir} is in use by process ${pid}; stop it first (two processes on one data dir corrupt it)`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates `file` holding our pid, unless a live process holds it: then returns that pid. A lock
 * left by a dead process (or a half-written file) is removed and taken over.
 */
export async function tryPidFileLock(file: string): Promise<{ release: () => Promise<void> } | { heldBy: number }> {
  for (;;) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx' });
      return { release: () => fs.rm(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return { heldBy: pid };
    await fs.rm(file, { force: true });
  }
}

/**
 * Takes an exclusive lock on a PGlite data directory: PGlite has no postmaster to refuse a second
 * process, and two writers would corrupt the files. A lock left by a dead process is taken over.
 * Returns the release function.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await fs.mkdir(dataDir, { recursive: true });
  const lock = await tryPidFileLock(path.join(dataDir, PGLITE_LOCK_FILE));
  if ('heldBy' in lock) throw new DataDirInUseError(dataDir, lock.heldBy);
  return lock.release;
}
