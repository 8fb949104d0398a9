import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { planInstall, runInstall } from '../../src/cli/install.js';
import { AUTO_ORDER, createRuntime, probeRuntimes, selectRuntime } from '../../src/sandbox/select.js';
import type { RuntimeConfig } from '../../src/sandbox/runtime.js';

const config: RuntimeConfig = {
  runtime: 'auto',
  stateDir: path.join(os.tmpdir(), 'sandfleet-select'),
  registryMirrorUrls: [],
  network: 'public',
  limits: { cpus: 1, memoryBytes: 256 << 20, pids: 256, diskBytes: 1 << 30 },
};

describe('runtime selection', () => {
  it('orders auto firecracker → qemu → gvisor → oci → bwrap and never picks shell or docker', async () => {
    assert.deepEqual(AUTO_ORDER, ['firecracker', 'qemu', 'gvisor', 'oci', 'bwrap']);
    const selection = await selectRuntime(config);
    assert.notEqual(selection.runtime.name, 'shell');
    assert.notEqual(selection.runtime.name, 'docker');
    assert.match(selection.reason, /^auto picked \w+: /);
    if (!(await (await createRuntime('firecracker', config)).probe()).available) assert.match(selection.reason, /skipped firecracker: /);
  });

  it('says why each runtime is or is not available', async () => {
    const reports = await probeRuntimes(config);
    const byName = Object.fromEntries(reports.map((r) => [r.name, r.availability]));
    for (const r of reports) assert.ok(r.availability.reason.length > 5, `${r.name}: ${r.availability.reason}`);
    assert.equal(byName.firecracker?.available, false);
    assert.match(byName.firecracker?.reason ?? '', /firecracker binary|kvm/i);
    for (const r of reports) console.log(`# ${r.name}: ${r.availability.available ? 'available' : 'unavailable'} — ${r.availability.reason}`);
  });

  it('drives the OCI CLI EXECUTOR_OCI_RUNTIME names', async () => {
    for (const binary of ['runc', 'crun'] as const) {
      const a = await (await createRuntime('oci', { ...config, ociBinary: binary })).probe();
      // Available: its version line comes first; unusable here: the reason names that binary.
      assert.match(a.reason, a.available ? new RegExp(`^${binary} version`) : new RegExp(binary), a.reason);
    }
  });

  it('reports a docker runtime without a daemon as unavailable', async () => {
    const host = { path: '/usr/bin:/bin', home: undefined, dockerHost: `unix://${os.tmpdir()}/no-such-docker.sock`, underTestRunner: true };
    const a = await (await createRuntime('docker', config, { host })).probe();
    assert.equal(a.available, false);
    assert.match(a.reason, /no Docker daemon answers/);
  });
});

describe('executor install', () => {
  it('plans packages and host set-up per runtime, and is idempotent', async () => {
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-install-'));
    const lines: string[] = [];
    const steps = planInstall(['oci'], { stateDir, dryRun: true, write: () => {} });
    assert.match(steps[0]?.title ?? '', /runc crun/);
    assert.ok(steps.some((s) => /hugetlb/.test(s.title)));
    // Dry run against the real host: nothing is changed, every step says what it would do.
    assert.equal(await runInstall(['bwrap', 'oci', 'gvisor'], { stateDir: path.join(stateDir, 'new'), dryRun: true, write: (l) => lines.push(l) }), true);
    assert.ok(lines.some((l) => /would create|already done/.test(l)), lines.join('\n'));
    await assert.rejects(fs.access(path.join(stateDir, 'new')));
    await fs.rm(stateDir, { recursive: true, force: true });
  });
});
