import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { makeTempDir } from '@sandfleet/test-helpers';
import { FAKE_FIRECRACKER_BIN } from '@sandfleet/test-helpers/fake-firecracker';
import { runTestVm } from '../../src/cli/test-vm.js';
import { guestImagesDir } from '../../src/sandbox/vm/guest-image.js';
import { cachedGuestImage } from './fixtures.js';

const BASE = { EXECUTOR_FRONTEND_URL: 'http://127.0.0.1:3080', EXECUTOR_FRONTEND_PASSWORD: 'secret-token', EXECUTOR_QUEUE_NAME: 'batches' };

/** A state directory whose installed guest image is the cached test image (linked, not copied). */
async function stateWithImage(): Promise<{ stateDir: string; kernelRelease: string }> {
  const image = await cachedGuestImage();
  const stateDir = makeTempDir('sandfleet-test-vm-', { untilFileEnds: true });
  const images = guestImagesDir(stateDir);
  fs.mkdirSync(images, { recursive: true });
  fs.symlinkSync(image.dir, path.join(images, image.inputDigest));
  fs.writeFileSync(path.join(images, 'current'), `${image.inputDigest}\n`);
  return { stateDir, kernelRelease: image.kernelRelease };
}

async function testVm(env: Record<string, string>): Promise<{ passed: boolean; lines: string[] }> {
  const lines: string[] = [];
  const passed = await runTestVm({ ...BASE, ...env }, { command: 'uname -r', write: (l) => lines.push(l) });
  return { passed, lines };
}

describe('executor test-vm', { timeout: 240_000 }, () => {
  it('boots the guest with QEMU, runs uname -r in it and prints the timings', async () => {
    const { stateDir, kernelRelease } = await stateWithImage();
    const { passed, lines } = await testVm({ EXECUTOR_STATE_DIR: stateDir });
    const text = lines.join('\n');
    assert.ok(passed, text);
    assert.ok(lines.some((l) => l.includes(`\`uname -r\` → ${kernelRelease}`)), text);
    assert.match(text, /timings: boot \d+ ms, command round trip \d+ ms/);
    assert.match(text, /accelerator (tcg|kvm): /);
    assert.deepEqual(fs.readdirSync(path.join(stateDir, 'vm-run')), [], 'the VM directory is removed');
  });

  it('without a guest image says to install one', async () => {
    const stateDir = makeTempDir('sandfleet-test-vm-empty-', { untilFileEnds: true });
    const { passed, lines } = await testVm({ EXECUTOR_STATE_DIR: stateDir });
    assert.equal(passed, false);
    assert.match(lines.join('\n'), /no guest image installed[\s\S]*fix: executor install vm-image/);
  });

  it('with firecracker selected, says what is missing here and how to fix it', async () => {
    const { stateDir } = await stateWithImage();
    const noBinary = await testVm({ EXECUTOR_STATE_DIR: stateDir, EXECUTOR_USE_FIRECRACKER: 'true', EXECUTOR_FIRECRACKER_BIN: path.join(stateDir, 'none') });
    assert.equal(noBinary.passed, false);
    assert.match(noBinary.lines.join('\n'), /EXECUTOR_FIRECRACKER_BIN=.* is not an executable file[\s\S]*fix: .*EXECUTOR_RUNTIME=qemu/);
    const fake = await testVm({ EXECUTOR_STATE_DIR: stateDir, EXECUTOR_RUNTIME: 'firecracker', EXECUTOR_FIRECRACKER_BIN: FAKE_FIRECRACKER_BIN });
    assert.equal(fake.passed, false);
    // This host has no usable KVM (absent, or PVM without VMX/SVM); where it has, the fake boots nothing.
    assert.match(fake.lines.join('\n'), /Firecracker needs KVM: /);
  });
});
