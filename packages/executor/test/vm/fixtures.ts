import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '@sandfleet/test-helpers';
import type { CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { VM_DIR_PREFIX } from '../../src/sandbox/vm/janitor.js';
import { buildGuestImage, downloadGuestPackages, type GuestImage, type GuestPackages } from '../../src/sandbox/vm/guest-image.js';

/** Guest images outlive test runs here (keyed by their input digest), outside the repository. */
export const VM_IMAGE_CACHE = '/var/cache/sandfleet-test/vm-image';

let packages: Promise<GuestPackages> | undefined;

/** The guest's Debian packages, downloaded with apt once per test file into a temp directory. */
export function guestPackages(): Promise<GuestPackages> {
  packages ??= downloadGuestPackages(path.join(makeTempDir('sandfleet-vm-debs-', { untilFileEnds: true }), 'debs'));
  return packages;
}

export async function cachedGuestImage(): Promise<GuestImage & { cached: boolean }> {
  return buildGuestImage(await guestPackages(), VM_IMAGE_CACHE);
}

export interface LogEntry { key: string; out?: string; exitCode?: number }
type JobBody = { executionLogs?: LogEntry[] };

export const logsOf = (job: JobBody): LogEntry[] => job.executionLogs ?? [];
export const stepOut = (job: JobBody, key: string): string => logsOf(job).find((e) => e.key === key)?.out ?? '';

/** The VM directories under `runDir` (the janitor's prefix). */
export const vmDirsIn = (runDir: string): string[] => (fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((n) => n.startsWith(VM_DIR_PREFIX)) : []);

/** Enqueues a job in the `batches` queue through the admin API and returns its id. */
export async function submitJob(coordinator: CoordinatorProcess, body: Record<string, unknown>): Promise<number> {
  const r = await coordinator.api('POST', '/api/jobs', { queue: 'batches', ...body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as number;
}
