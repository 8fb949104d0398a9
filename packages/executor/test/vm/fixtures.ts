import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildTestImages, makeTempDir, startRegistry, type TestRegistry } from '@sandfleet/test-helpers';
import { startCoordinatorProcess, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
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

/** Installs the cached guest image in `stateDir` as `executor install vm-image` leaves it. */
export async function installCachedGuestImage(stateDir: string): Promise<GuestImage> {
  const image = await cachedGuestImage();
  fs.mkdirSync(path.join(stateDir, 'vm-images'), { recursive: true });
  fs.symlinkSync(image.dir, path.join(stateDir, 'vm-images', image.inputDigest));
  fs.writeFileSync(path.join(stateDir, 'vm-images', 'current'), `${image.inputDigest}\n`);
  return image;
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

/**
 * The two-step job both VM runtimes are tested with: a clone, a secret in the first step's env,
 * and a file the second step reads back. `secondCommands` come after `cat marker`.
 */
export function twoStepJob(o: { repositoryName: string; commit: string; image: string; secret: string; secondCommands: string[] }): Record<string, unknown> {
  return {
    repositoryName: o.repositoryName,
    commit: o.commit,
    redactedValues: { [o.secret]: '[SECRET]' },
    dockerSteps: [
      { key: 'first', image: o.image, env: [`SECRET=${o.secret}`], commands: ['cat README.md', 'cat /opt/stuff/new', 'echo "as $(id -u) in $(pwd)"', 'echo "token=$SECRET"', 'echo one > marker', 'uname -r'] },
      { key: 'second', image: o.image, commands: ['cat marker', ...o.secondCommands] },
    ],
  };
}

/** What the first step of twoStepJob printed in a VM, and the second step's `cat marker`; returns the second step's output. */
export function assertTwoStepJobRanInVm(job: JobBody, cloned: RegExp): string {
  const first = stepOut(job, 'step.docker.first');
  assert.match(first, cloned);
  assert.match(first, /stdout: from layer 2/, 'the step sees the image root (layer 2 of the test image)');
  assert.match(first, /stdout: as 1000 in \/data/, 'the image user, in the workspace');
  assert.match(first, /stdout: token=\[SECRET\]/);
  assert.match(first, /stdout: \d+\.\d+\.\d+-\d+-cloud-amd64/, 'the guest kernel, not the host');
  const second = stepOut(job, 'step.docker.second');
  assert.match(second, /stdout: one/, 'the workspace carries over between steps');
  return second;
}

/** A local registry serving the busybox test image, and a coordinator (PGlite) knowing `repository`. */
export async function startVmJobServices(repository: { name: string; source: string }): Promise<{ registry: TestRegistry; imageRef: string; coordinator: CoordinatorProcess }> {
  const registry = await startRegistry();
  await registry.push('test/busybox', '1', (await buildTestImages()).busybox);
  const coordinator = await startCoordinatorProcess('pglite');
  const registered = await coordinator.api('POST', '/api/repositories', repository);
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
  return { registry, imageRef: `${registry.host}/test/busybox:1`, coordinator };
}

/** The executor settings both VM runtimes' job tests use: one small VM per job, no network. */
export function vmJobExecutorEnv(stateDir: string, registryHost: string): Record<string, string> {
  return {
    EXECUTOR_STATE_DIR: stateDir,
    EXECUTOR_NETWORK: 'none',
    EXECUTOR_ALLOWED_PRIVATE_REGISTRIES: registryHost,
    EXECUTOR_JOB_NUM_CPUS: '1',
    EXECUTOR_JOB_MEMORY: '256M',
    EXECUTOR_FIRECRACKER_DISK_SPACE: '512M',
    EXECUTOR_QUEUE_POLL_INTERVAL: '200ms',
  };
}
