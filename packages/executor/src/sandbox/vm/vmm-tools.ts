import fs from 'node:fs';
import { capture } from '../../process/run.js';
import { SYSTEM_PATH } from '../shared/host.js';
import type { FirecrackerSettings } from '../runtime.js';
import { findFirecrackerBinaries } from './firecracker/binaries.js';

/** The virtual machine monitors on this host and their versions, for `validate` and `test-vm`. */
export interface VmmTool {
  name: 'qemu-system-x86_64' | 'firecracker' | 'jailer';
  path: string | undefined;
  /** First line of `--version`, or why there is none. */
  version: string | undefined;
  /** How to get it when it is missing. */
  fix: string;
}

export const QEMU_PACKAGE = 'qemu-system-x86';

async function versionLine(binary: string): Promise<string | undefined> {
  try {
    const r = await capture([binary, '--version'], { env: { PATH: SYSTEM_PATH }, signal: AbortSignal.timeout(10_000) });
    return r.exitCode === 0 ? r.stdout.trim().split('\n')[0] : undefined;
  } catch {
    return undefined;
  }
}

export async function vmmTools(settings: FirecrackerSettings | undefined, searchPath = SYSTEM_PATH): Promise<VmmTool[]> {
  const qemuPath = searchPath.split(':').filter(Boolean).map((d) => `${d}/qemu-system-x86_64`).find((p) => fs.existsSync(p));
  // The jailer is listed whether or not it would be used (it needs root); the notes say which.
  const fc = findFirecrackerBinaries(settings ? { ...settings, useJailer: true } : undefined, searchPath, true);
  const tool = async (name: VmmTool['name'], path: string | undefined, fix: string): Promise<VmmTool> =>
    ({ name, path, version: path ? await versionLine(path) : undefined, fix });
  return Promise.all([
    tool('qemu-system-x86_64', qemuPath, `apt-get install ${QEMU_PACKAGE} (or: executor install vm-image)`),
    tool('firecracker', fc.firecracker, 'bring a firecracker release binary and point EXECUTOR_FIRECRACKER_BIN at it (or put it on PATH)'),
    tool('jailer', fc.jailer, 'optional: put the jailer of the same Firecracker release beside firecracker or set EXECUTOR_FIRECRACKER_JAILER_BIN'),
  ]);
}
