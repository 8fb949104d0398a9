/**
 * EXECUTOR_RUNTIME=qemu end to end: a real coordinator, real `executor run` processes, the test
 * images from a local registry and the guest booted under QEMU (TCG here, KVM where it works).
 * One executor serves the first jobs (each job boots its own VM); a second one, started after the
 * first was SIGKILLed, shows the janitor and the job deadline.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createGitRepository, isAlive, makeTempDir, removeTempDir, startExecutorProcess, waitFor, type ExecutorProcess, type TestRegistry } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, waitForJobState, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { NETWORK_RECORD_FILE, QEMU_PID_FILE } from '../../src/sandbox/vm/janitor.js';
import { QemuRuntime, vmShape } from '../../src/sandbox/vm/qemu-runtime.js';
import { VMM_ID_BASE, VMM_ID_SLOTS } from '../../src/sandbox/vm/vmm-identity.js';
import { selectRuntime } from '../../src/sandbox/select.js';
import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import type { RuntimeConfig } from '../../src/sandbox/runtime.js';
import { assertTwoStepJobRanInVm, installCachedGuestImage, startVmJobServices, vmJobExecutorEnv, logsOf, stepOut, submitJob, twoStepJob, vmDirsIn } from './fixtures.js';


describe('the qemu runtime through a real coordinator', { timeout: 420_000 }, () => {
  let coordinator: CoordinatorProcess;
  let registry: TestRegistry;
  let stateDir: string;
  let runDir: string;
  let executor: ExecutorProcess | undefined;
  let imageRef: string;
  const repo = createGitRepository({ 'README.md': 'cloned into the VM workspace\n' });

  const executorEnv = (extra: Record<string, string> = {}) => ({
    EXECUTOR_RUNTIME: 'qemu',
    ...vmJobExecutorEnv(stateDir, registry.host),
    EXECUTOR_CLEANUP_TASK_INTERVAL: '2s',
    ...extra,
  });
  const vmDirs = () => vmDirsIn(runDir);
  const submit = (body: Record<string, unknown>) => submitJob(coordinator, body);
  /** The QEMU of the one VM running now, once its step printed `marker`. */
  const runningVm = async (id: number, marker: RegExp): Promise<{ dir: string; pid: number }> => {
    try {
      await waitFor(`job ${id} to print ${marker}`, async () => marker.test(JSON.stringify(logsOf((await coordinator.api('GET', `/api/jobs/${id}`)).body))), 90_000, 250);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${JSON.stringify((await coordinator.api('GET', `/api/jobs/${id}`)).body, null, 1)}\n${executor!.output().slice(-4000)}`);
    }
    const [name] = vmDirs();
    assert.ok(name, 'a VM directory while the job runs');
    const dir = path.join(runDir, name);
    return { dir, pid: Number(fs.readFileSync(path.join(dir, QEMU_PID_FILE), 'utf8').split(' ')[0]) };
  };

  before(async () => {
    stateDir = makeTempDir('sandfleet-qemu-state-');
    runDir = path.join(stateDir, 'vm-run');
    // The guest image as `executor install vm-image` leaves it, built once into the test cache.
    await installCachedGuestImage(stateDir);
    ({ registry, imageRef, coordinator } = await startVmJobServices({ name: 'github.com/sandfleet/vm', source: repo.path }));
    executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, executorEnv());
  });

  after(async () => {
    await executor?.stop();
    await coordinator?.stop();
    await registry?.stop();
    if (stateDir) removeTempDir(stateDir);
  });

  it('sizes the VM from the job limits within the guest minimum and the host', () => {
    const GiB = 2 ** 30;
    const limits = (cpus: number, memoryBytes: number) => ({ cpus, memoryBytes, pids: 0, diskBytes: 0 });
    assert.deepEqual(vmShape(limits(2, 12 * GiB), 24 * GiB, 8), { memoryMiB: 12 * 1024, cpus: 2 });
    assert.deepEqual(vmShape(limits(16, 64 * GiB), 8 * GiB, 4), { memoryMiB: 6 * 1024, cpus: 4 }, 'at most ¾ of the host RAM and its CPUs');
    assert.deepEqual(vmShape(limits(1, 64 * 2 ** 20), 8 * GiB, 4), { memoryMiB: 256, cpus: 1 }, 'at least 256 MiB');
    assert.deepEqual(vmShape(limits(0, 0), 8 * GiB, 4), { memoryMiB: 2048, cpus: 4 }, 'unbounded: 2 GiB and every CPU');
  });

  it('is available with the installed guest, and auto passes it over unless it has KVM', async () => {
    const config: RuntimeConfig = { runtime: 'auto', stateDir, registryMirrorUrls: [], network: 'none', limits: { cpus: 1, memoryBytes: 256 << 20, pids: 256, diskBytes: 256 << 20 } };
    const availability = await new QemuRuntime(makeRuntimeDeps(config)).probe();
    assert.equal(availability.available, true, availability.reason);
    const selection = await selectRuntime(config);
    if (/^kvm/.test(availability.reason)) assert.equal(selection.runtime.name, 'qemu');
    else {
      assert.match(availability.notForAuto ?? '', /TCG\) is slow/);
      assert.notEqual(selection.runtime.name, 'qemu');
      assert.match(selection.reason, /skipped .*qemu: QEMU without KVM/);
    }
    const missing = await new QemuRuntime(makeRuntimeDeps({ ...config, stateDir: path.join(stateDir, 'nothing-here') })).probe();
    assert.equal(missing.available, false);
    assert.match(missing.reason, /executor install vm-image/);
  });

  it('runs a two-step job with a clone and a secret to completed, in the image root, with the output redacted', async () => {
    const secret = 'vm-secret-value-0451';
    const id = await submit(twoStepJob({
      repositoryName: 'github.com/sandfleet/vm', commit: repo.commit, image: imageRef, secret,
      secondCommands: ['echo "env: ${SECRET:-unset} ${IMAGE_VAR}"', 'ls /etc/removed 2>&1 || true', 'test -e /dev/vda && echo "sees disks" || echo "no raw disks"'],
    }));
    const job = await waitForJobState(coordinator, id, ['completed', 'failed', 'errored'], 180_000);
    assert.equal(job.state, 'completed', `${JSON.stringify(job, null, 2)}\n${executor!.output().slice(-3000)}`);
    const second = assertTwoStepJobRanInVm(job, /stdout: cloned into the VM workspace/);
    assert.match(second, /stdout: env: unset from-image/);
    assert.match(second, /No such file/, 'whiteouts of the image hold');
    assert.match(second, /stdout: no raw disks/);
    // Warm start is the default: the VM was restored from the idle guest saved for this shape.
    assert.match(JSON.stringify(logsOf(job)), /microVM up in \d+ ms \(restored from a saved idle guest\)/);
    assert.ok(fs.readdirSync(path.join(stateDir, 'vm-templates')).some((f) => f.endsWith('.state')), 'the saved guest is kept for later jobs');
    assert.ok(!JSON.stringify(logsOf(job)).includes(secret), 'the secret must not reach the logs');
    assert.deepEqual(vmDirs(), [], 'the VM directory and its disks are gone after the job');
  });

  it('OOM-kills a step over the VM memory and reports it, and the job ends cleanly', async () => {
    const id = await submit({
      dockerSteps: [{ key: 'hog', image: imageRef, commands: [`awk 'BEGIN { s = "x"; while (1) s = s s }'`] }],
    });
    const job = await waitForJobState(coordinator, id, ['completed', 'failed', 'errored'], 180_000);
    assert.equal(job.state, 'failed', JSON.stringify(job, null, 2));
    assert.match(stepOut(job, 'step.docker.hog'), /killed: out of memory \(limit 256 MiB/);
    assert.deepEqual(vmDirs(), []);
  });

  it('stops the VM within 10 s of a cancel', async () => {
    const id = await submit({ dockerSteps: [{ key: 'sleeper', image: imageRef, commands: ['echo started', 'sleep 600'] }] });
    const vm = await runningVm(id, /stdout: started/);
    // The job's QEMU dropped to an id of its own, with no capabilities, chrooted, under its seccomp filter.
    const status = fs.readFileSync(`/proc/${vm.pid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
    assert.ok(uid >= VMM_ID_BASE && uid < VMM_ID_BASE + VMM_ID_SLOTS, status);
    assert.match(status, /^Uid:\s+(\d+)\s+\1\s+\1\s+\1$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.match(status, /^Seccomp:\s+2$/m);
    assert.equal(fs.readlinkSync(`/proc/${vm.pid}/root`), vm.dir, 'chrooted into its own VM directory');
    const dirStat = fs.statSync(vm.dir);
    assert.equal(dirStat.mode & 0o777, 0o710);
    assert.equal(dirStat.gid, uid, 'only its own VMM may enter the directory');
    const requested = Date.now();
    const canceled = await coordinator.api('POST', `/api/jobs/${id}/cancel`);
    assert.equal(canceled.status, 200);
    const job = await waitForJobState(coordinator, id, ['canceled', 'failed', 'completed', 'errored'], 15_000);
    assert.equal(job.state, 'canceled');
    await waitFor('QEMU to be gone', () => !isAlive(vm.pid), 10_000 - (Date.now() - requested));
    assert.ok(Date.now() - requested < 10_000, `took ${Date.now() - requested} ms`);
    await waitFor('the VM directory to be removed', () => !fs.existsSync(vm.dir), 5_000);
    assert.deepEqual(fs.readdirSync(path.join(runDir, '.vmm-ids')), [], 'its VMM id is released');
  });

  it('removes the VM of a SIGKILLed executor at the next start, and a job past its deadline ends cleanly', async () => {
    const stuck = await submit({ dockerSteps: [{ key: 'orphan', image: imageRef, commands: ['echo orphan-running', 'sleep 600'] }] });
    const vm = await runningVm(stuck, /stdout: orphan-running/);
    // Policy none still gives the VM its own job namespace (only lo), recorded for the janitor.
    const { namespaces } = JSON.parse(fs.readFileSync(path.join(vm.dir, NETWORK_RECORD_FILE), 'utf8')) as { namespaces: string[] };
    assert.equal(namespaces.length, 1);
    assert.ok(fs.existsSync(`/run/netns/${namespaces[0]}`), namespaces[0]);
    executor!.child.kill('SIGKILL');
    await executor!.stop();
    assert.ok(isAlive(vm.pid), 'QEMU outlives its executor');
    await coordinator.api('POST', `/api/jobs/${stuck}/cancel`);
    // This executor boots its VMs cold, so both ways of starting a job's VM run here.
    executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, executorEnv({ EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: '25s', EXECUTOR_VM_WARM_START: 'false' }));
    await waitFor('the janitor to kill the orphaned QEMU', () => !isAlive(vm.pid), 30_000);
    await waitFor('the orphaned VM directory to be removed', () => !fs.existsSync(vm.dir), 10_000);
    assert.equal(fs.existsSync(`/run/netns/${namespaces[0]}`), false, 'the orphaned VM\'s job namespace is removed with it');

    const id = await submit({ dockerSteps: [{ key: 'forever', image: imageRef, commands: ['echo begun', 'sleep 600'] }] });
    const job = await waitForJobState(coordinator, id, ['completed', 'failed', 'errored', 'canceled'], 120_000);
    assert.equal(job.state, 'failed', JSON.stringify(job, null, 2));
    assert.match(job.failureMessage, /maximum execution time/);
    assert.match(stepOut(job, 'step.docker.forever'), /stdout: begun[\s\S]*killed: (time limit exceeded|job exceeded maximum execution time)/);
    assert.match(JSON.stringify(logsOf(job)), /microVM up in \d+ ms \(booted\)/);
    await waitFor('no VM left', () => vmDirs().length === 0, 10_000);
  });
});
