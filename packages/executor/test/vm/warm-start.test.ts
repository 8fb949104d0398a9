import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import type { GuestImage } from '../../src/sandbox/vm/guest-image.js';
import { VM_DIR_PREFIX } from '../../src/sandbox/vm/janitor.js';
import { QemuVm, type QemuVmOptions } from '../../src/sandbox/vm/qemu.js';
import { restoreGuest, saveGuestState, WarmStartError } from '../../src/sandbox/vm/warm-start.js';
import { cachedGuestImage } from './fixtures.js';

const GAP_SECONDS = 4;

describe('warm start: a saved idle guest restored per job', { timeout: 240_000 }, () => {
  let image: GuestImage;
  let runDir: string;
  let stateFile: string;
  let options: QemuVmOptions;
  let savedUptime = 0;
  const vms: QemuVm[] = [];

  before(async () => {
    image = await cachedGuestImage();
    runDir = makeTempDir('sandfleet-vm-warm-');
    stateFile = path.join(runDir, 'idle.state');
    options = { image, runDir, accelerator: 'tcg', memoryMiB: 128, cpus: 1, bootTimeoutMs: 120_000, control: true };
    const cold = await QemuVm.boot(options);
    try {
      const r = await cold.run('echo before-save > /tmp/base; cut -d" " -f1 /proc/uptime', 30);
      savedUptime = Number(r.stdout.trim());
      await saveGuestState(cold, stateFile);
    } finally {
      await cold.teardown();
    }
    await new Promise((r) => setTimeout(r, GAP_SECONDS * 1000));
  });

  after(async () => {
    for (const vm of vms) await vm.teardown();
    removeTempDir(runDir);
  });

  /**
   * Restores a guest and reads its clock at once. Without the first step it would lag by at least
   * the time the state sat on disk (GAP_SECONDS): the guest's clock does not run while it is
   * saved. (Under TCG on a loaded host a guest's clock also falls behind as it runs, so the clock
   * is read right away.)
   */
  async function restoredWithClockChecked(): Promise<QemuVm> {
    const vm = await restoreGuest(options, stateFile);
    vms.push(vm);
    const hostBefore = Date.now() / 1000;
    const r = await vm.run('date +%s', 30);
    const hostAfter = Date.now() / 1000;
    const guestTime = Number(r.stdout.trim());
    assert.ok(guestTime >= Math.floor(hostBefore) - 2 && guestTime <= hostAfter + 1, `guest clock ${guestTime}, host ${hostBefore}–${hostAfter}`);
    return vm;
  }

  it('each restored guest starts from the saved state, on its own copy of it, with its clock set', async () => {
    const first = await restoredWithClockChecked();
    const second = await restoredWithClockChecked();
    const a = await first.run('cat /tmp/base; cut -d" " -f1 /proc/uptime; echo job-a > /tmp/mine; cat /tmp/mine', 30);
    const b = await second.run('cat /tmp/base; cat /tmp/mine 2>&1; echo rc=$?', 30);
    assert.match(a.stdout, /^before-save\n/);
    assert.match(b.stdout, /^before-save\n/);
    // The guest continues from the save: its uptime goes on from there, it did not boot again.
    const uptime = Number(a.stdout.split('\n')[1]);
    assert.ok(uptime >= savedUptime && uptime < savedUptime + 60, `uptime ${uptime} after a save at ${savedUptime}`);
    assert.match(a.stdout, /job-a\n$/);
    assert.match(b.stdout, /No such file or directory\nrc=1\n$/, 'a write in one restored guest showed up in another');
  });

  it('restored guests do not share their random numbers', async () => {
    const [x, y] = await Promise.all(vms.slice(0, 2).map((vm) => vm.run('head -c 32 /dev/urandom | base64', 30)));
    assert.match(x!.stdout, /^\S{44}\n$/);
    assert.notEqual(x!.stdout, y!.stdout);
  });

  it('a state saved for other options is refused before QEMU starts', async () => {
    const before = fs.readdirSync(runDir).filter((f) => f.startsWith(VM_DIR_PREFIX)).length;
    await assert.rejects(restoreGuest({ ...options, memoryMiB: 256 }, stateFile), (e: unknown) => e instanceof WarmStartError && /saved for other VM options/.test(e.message));
    await assert.rejects(restoreGuest(options, path.join(runDir, 'missing.state')), /is not a saved guest state/);
    assert.equal(fs.readdirSync(runDir).filter((f) => f.startsWith(VM_DIR_PREFIX)).length, before);
  });
});
