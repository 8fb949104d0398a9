import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { makeTempDir } from '@sandfleet/test-helpers';
import { FAKE_FIRECRACKER_BIN } from '@sandfleet/test-helpers/fake-firecracker';
import { ConfigError, loadConfig } from '../../src/config.js';
import { RuntimeUnavailableError } from '../../src/sandbox/runtime.js';
import { AUTO_ORDER, selectRuntime } from '../../src/sandbox/select.js';
import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { findFirecrackerBinaries } from '../../src/sandbox/vm/firecracker/binaries.js';
import { firecrackerAvailability, FirecrackerLimitsError, FirecrackerRuntime, machineForLimits, type FirecrackerFacts } from '../../src/sandbox/vm/firecracker.js';
import { kvmFacts, kvmUnusableReason } from '../../src/sandbox/vm/kvm-host.js';

const BASE = { EXECUTOR_FRONTEND_URL: 'http://127.0.0.1:3080', EXECUTOR_FRONTEND_PASSWORD: 'secret-token', EXECUTOR_QUEUE_NAME: 'batches' };
const work = makeTempDir('sandfleet-fc-select-', { untilFileEnds: true });
const stateDir = path.join(work, 'state');

function config(env: Record<string, string> = {}) {
  return loadConfig({ ...BASE, EXECUTOR_STATE_DIR: stateDir, ...env }, { hostname: () => 'h', randomUUID: () => 'u', tmpdir: () => work });
}

const USR_BIN_HOST = { path: '/usr/bin', home: undefined, dockerHost: undefined, underTestRunner: true };
const INTEL = 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 vmx sse2\n';
const NO_VIRT = 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 sse2\n';

describe('firecracker runtime selection', () => {
  it('EXECUTOR_USE_FIRECRACKER=true selects firecracker, and the selection says why it cannot run', async () => {
    const c = config({ EXECUTOR_USE_FIRECRACKER: 'true', EXECUTOR_FIRECRACKER_BIN: FAKE_FIRECRACKER_BIN });
    assert.equal(c.runtimeConfig.runtime, 'firecracker');
    assert.equal(c.runtimeConfig.firecracker?.bin, FAKE_FIRECRACKER_BIN);
    // An explicit EXECUTOR_RUNTIME wins over Sourcegraph's switch.
    assert.equal(config({ EXECUTOR_USE_FIRECRACKER: 'true', EXECUTOR_RUNTIME: 'bwrap' }).runtimeConfig.runtime, 'bwrap');
    await assert.rejects(selectRuntime(c.runtimeConfig), (err: unknown) =>
      err instanceof RuntimeUnavailableError && err.runtime === 'firecracker' && err.reason.startsWith(`${FAKE_FIRECRACKER_BIN} found, but KVM does not work here`));
  });

  it('parses the jailer settings and refuses bad ones', () => {
    const c = config({ EXECUTOR_FIRECRACKER_JAILER_BIN: '/opt/fc/jailer', EXECUTOR_FIRECRACKER_USE_JAILER: 'false', EXECUTOR_FIRECRACKER_JAILER_UID: '1234', EXECUTOR_FIRECRACKER_JAILER_GID: '5678' });
    assert.deepEqual(c.runtimeConfig.firecracker, { bin: undefined, jailerBin: '/opt/fc/jailer', useJailer: false, jailerUid: 1234, jailerGid: 5678 });
    assert.throws(() => config({ EXECUTOR_FIRECRACKER_JAILER_UID: 'nobody', EXECUTOR_FIRECRACKER_USE_JAILER: 'maybe' }), (err: unknown) =>
      err instanceof ConfigError && err.problems.some((p) => p.includes('EXECUTOR_FIRECRACKER_JAILER_UID')) && err.problems.some((p) => p.includes('EXECUTOR_FIRECRACKER_USE_JAILER')));
  });

  it('finds the binary from EXECUTOR_FIRECRACKER_BIN or PATH, and the jailer beside it only as root', () => {
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    for (const name of ['firecracker', 'jailer']) fs.copyFileSync(FAKE_FIRECRACKER_BIN, path.join(bin, name));
    for (const name of ['firecracker', 'jailer']) fs.chmodSync(path.join(bin, name), 0o755);
    const settings = { useJailer: true, jailerUid: 65534, jailerGid: 65534 };
    assert.equal(findFirecrackerBinaries(settings, `/nonexistent:${bin}`, false).firecracker, path.join(bin, 'firecracker'));
    assert.equal(findFirecrackerBinaries(settings, `/nonexistent:${bin}`, true).jailer, path.join(bin, 'jailer'));
    assert.match(findFirecrackerBinaries(settings, bin, false).notes.join(), /jailer .* needs root/);
    assert.equal(findFirecrackerBinaries({ ...settings, useJailer: false }, bin, true).jailer, undefined);
    const missing = findFirecrackerBinaries(settings, '/nonexistent', false);
    assert.equal(missing.firecracker, undefined);
    assert.match(missing.notes.join(), /set EXECUTOR_FIRECRACKER_BIN or put `firecracker` on PATH/);
    assert.match(findFirecrackerBinaries({ ...settings, bin: path.join(work, 'nope') }, bin, false).notes.join(), /EXECUTOR_FIRECRACKER_BIN=.* is not an executable/);
  });

  it('sizes the VM from EXECUTOR_JOB_NUM_CPUS, EXECUTOR_JOB_MEMORY and EXECUTOR_FIRECRACKER_DISK_SPACE', () => {
    const c = config({ EXECUTOR_JOB_NUM_CPUS: '2', EXECUTOR_JOB_MEMORY: '1536M', EXECUTOR_FIRECRACKER_DISK_SPACE: '5G' });
    assert.deepEqual(machineForLimits(c.runtimeConfig.limits), { vcpus: 2, memoryMiB: 1536, workspaceBytes: 5 * 2 ** 30 });
    const limits = c.runtimeConfig.limits;
    assert.equal(machineForLimits({ ...limits, cpus: 0 }, 7).vcpus, 6);
    assert.equal(machineForLimits({ ...limits, cpus: 0 }, 64).vcpus, 32);
    assert.throws(() => machineForLimits({ ...limits, cpus: 3 }), FirecrackerLimitsError);
    assert.throws(() => machineForLimits({ ...limits, cpus: 34 }), /up to 32/);
    assert.throws(() => machineForLimits({ ...limits, memoryBytes: 0 }), /at least 128 MiB/);
    assert.throws(() => machineForLimits({ ...limits, diskBytes: 0 }), /DISK_SPACE/);
  });

  it('reads KVM facts and tells a PVM /dev/kvm from a usable one', () => {
    const dev = path.join(work, 'kvm');
    fs.writeFileSync(dev, '');
    assert.equal(kvmUnusableReason(kvmFacts({ device: dev, cpuinfo: INTEL, modules: 'kvm_intel 1 0\nkvm 2 1\n' })), undefined);
    assert.match(kvmUnusableReason(kvmFacts({ device: dev, cpuinfo: NO_VIRT, modules: 'kvm_pvm 1 0\n' }))!, /kvm_pvm without VMX\/SVM/);
    assert.match(kvmUnusableReason(kvmFacts({ device: path.join(work, 'no-kvm'), cpuinfo: INTEL, modules: '' }))!, /absent/);
  });

  it('auto prefers firecracker only with the binary and working KVM, and otherwise says why not', async () => {
    assert.equal(AUTO_ORDER[0], 'firecracker');
    const binaries = { firecracker: '/opt/fc/firecracker', jailer: undefined, notes: ['no jailer'] };
    const ready: FirecrackerFacts = { binaries, kvmProblem: undefined, kvmProof: 'a KVM test guest booted in 800 ms' };
    assert.deepEqual(firecrackerAvailability(ready), { available: true, reason: '/opt/fc/firecracker with KVM (a KVM test guest booted in 800 ms); no jailer' });
    assert.match(firecrackerAvailability({ ...ready, binaries: { firecracker: undefined, jailer: undefined, notes: ['no firecracker binary'] } }).reason, /no firecracker binary/);
    assert.equal(firecrackerAvailability({ ...ready, kvmProblem: '/dev/kvm is absent' }).available, false);

    // The real probe on this host with the fake binary: KVM is the blocker (absent, PVM, or no guest image).
    const c = config({ EXECUTOR_FIRECRACKER_BIN: FAKE_FIRECRACKER_BIN });
    const probe = await new FirecrackerRuntime(makeRuntimeDeps(c.runtimeConfig, { host: USR_BIN_HOST }), { device: path.join(work, 'no-kvm') }).probe();
    assert.equal(probe.available, false);
    assert.match(probe.reason, /KVM does not work here: .*no-kvm is absent/);
    const fakeKvm = path.join(work, 'kvm');
    const noImage = await new FirecrackerRuntime(makeRuntimeDeps(c.runtimeConfig, { host: USR_BIN_HOST }), { device: fakeKvm, cpuinfo: INTEL, modules: '' }).probe();
    assert.match(noImage.reason, /KVM test boot needs the guest image: no guest image installed .*executor install vm-image/);
    const selection = await selectRuntime({ ...c.runtimeConfig, runtime: 'auto' });
    assert.notEqual(selection.runtime.name, 'firecracker');
    assert.match(selection.reason, /skipped firecracker: .*found, but KVM does not work here/);
  });
});
