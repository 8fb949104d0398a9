import fs from 'node:fs/promises';
import path from 'node:path';

/** Lives inside the data dir; named so it is obviously ours, not PostgreSQL's postmaster.pid. */
export const PGLITE_LOCK_FILE = 'sandfleet.lock';

/** Another live process holds the PGlite data directory. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`PGlite data directory ${dataDir} is in use by process ${pid}; stop it first (two processes on one data dir corrupt it)`);
    this.name = 'DataDirInUseError';
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
 * Takes an exclusive lock on a PGlite data directory: PGlite has no postmaster to refuse a second
 * process, and two writers would corrupt the files. A lock left by a dead process is taken over.
 * Returns the release function.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await fs.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, PGLITE_LOCK_FILE);
  for (;;) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx' });
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) throw new DataDirInUseError(dataDir, pid);
    // Stale (dead owner or half-written file): remove and race for it again.
    await fs.rm(file, { force: true });
  }
}
