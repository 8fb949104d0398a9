import { after, before } from 'node:test';
import { assertNoLeaks, OWNER_ENV, takeLeakSnapshot, type LeakSnapshot } from './leaks.js';
import { removeFileScopedTempDirs } from './temp-dirs.js';

let registered = false;

/**
 * Snapshots before the file's first test and fails the file after its last one if anything
 * attributable to this process was left behind. Idempotent: a file that calls it too is checked once.
 */
export function checkLeaksAfterFile(): void {
  if (registered) return;
  registered = true;
  // Children that inherit this environment carry the mark, even once reparented.
  process.env[OWNER_ENV] = String(process.pid);
  let snapshot: LeakSnapshot | undefined;
  before(() => {
    snapshot = takeLeakSnapshot();
  });
  after(async () => {
    removeFileScopedTempDirs();
    if (snapshot) await assertNoLeaks(snapshot);
  });
}
