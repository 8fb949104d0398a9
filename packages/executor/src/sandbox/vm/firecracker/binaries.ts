import fs from 'node:fs';
import path from 'node:path';
import { SYSTEM_PATH } from '../../shared/host.js';
import type { FirecrackerSettings } from '../../runtime.js';

/** Where the firecracker runtime's VMM binaries are, or why one is missing. */
export interface FirecrackerBinaries {
  firecracker: string | undefined;
  /** Set only when the jailer is found and configured to be used. */
  jailer: string | undefined;
  /** What was looked at, for `validate` and the probe's reason. */
  notes: string[];
}

function executable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, searchPath: string): string | undefined {
  return searchPath.split(':').filter(Boolean).map((dir) => path.join(dir, name)).find(executable);
}

/**
 * EXECUTOR_FIRECRACKER_BIN, else `firecracker` on PATH; the jailer from
 * EXECUTOR_FIRECRACKER_JAILER_BIN, else `jailer` beside firecracker or on PATH. The jailer needs
 * root (it chroots, changes uid and joins cgroups), so without root it is reported and not used.
 */
export function findFirecrackerBinaries(settings: FirecrackerSettings | undefined, searchPath = SYSTEM_PATH, isRoot = process.getuid?.() === 0): FirecrackerBinaries {
  const notes: string[] = [];
  let firecracker: string | undefined;
  if (settings?.bin) {
    if (executable(settings.bin)) firecracker = settings.bin;
    else notes.push(`EXECUTOR_FIRECRACKER_BIN=${settings.bin} is not an executable file`);
  } else {
    firecracker = onPath('firecracker', searchPath);
    if (!firecracker) notes.push('no firecracker binary (set EXECUTOR_FIRECRACKER_BIN or put `firecracker` on PATH)');
  }
  if (!firecracker) return { firecracker, jailer: undefined, notes };
  let jailer: string | undefined;
  if (settings?.jailerBin) {
    if (executable(settings.jailerBin)) jailer = settings.jailerBin;
    else notes.push(`EXECUTOR_FIRECRACKER_JAILER_BIN=${settings.jailerBin} is not an executable file`);
  } else {
    const beside = path.join(path.dirname(firecracker), 'jailer');
    jailer = executable(beside) ? beside : onPath('jailer', searchPath);
  }
  if (jailer && settings?.useJailer === false) {
    notes.push(`jailer ${jailer} found but EXECUTOR_FIRECRACKER_USE_JAILER=false`);
    jailer = undefined;
  } else if (jailer && !isRoot) {
    notes.push(`jailer ${jailer} found but not used: it needs root`);
    jailer = undefined;
  } else if (!jailer) {
    notes.push('no jailer: Firecracker runs unjailed as the executor\'s user');
  }
  return { firecracker, jailer, notes };
}
