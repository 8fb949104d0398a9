import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Every directory made by makeTempDir in this process and not yet removed (the leak check reads it). */
const created = new Set<string>();
/** Every directory ever made here: a mount below one is ours even after the directory went. */
const everMade = new Set<string>();

/** Directories whose lifetime is the test file: removed when it ends, before the leak check. */
const fileScoped = new Set<string>();

/**
 * A fresh directory under os.tmpdir() named `<prefix>XXXXXX`, remembered until removeTempDir.
 * `untilFileEnds`: for plain data fixtures (a git repository) that may live as long as the file.
 */
export function makeTempDir(prefix: string, options: { untilFileEnds?: boolean } = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.add(dir);
  everMade.add(dir);
  if (options.untilFileEnds) fileScoped.add(dir);
  return dir;
}

/** Removes the directories made `untilFileEnds` (the leak check calls it when the file ends). */
export function removeFileScopedTempDirs(): void {
  for (const dir of fileScoped) removeTempDir(dir);
  fileScoped.clear();
}

process.once('exit', removeFileScopedTempDirs);

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  created.delete(dir);
}

/** The directories made here that still exist. */
export function remainingTempDirs(): string[] {
  return [...created].filter((dir) => fs.existsSync(dir));
}

export function tempDirsEverMade(): string[] {
  return [...everMade];
}
