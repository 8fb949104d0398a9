import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { planInstall, runInstall } from '../../src/cli/install.js';
import { guestImagesDir } from '../../src/sandbox/vm/guest-image.js';
import { cachedGuestImage } from './fixtures.js';

describe('executor install vm-image', { timeout: 300_000 }, () => {
  let stateDir: string;
  before(() => {
    stateDir = makeTempDir('sandfleet-install-vm-');
  });
  after(() => removeTempDir(stateDir));

  it('a dry run names QEMU and the image steps and changes nothing', async () => {
    const lines: string[] = [];
    const fresh = path.join(stateDir, 'dry');
    assert.match(planInstall(['vm-image'], { stateDir: fresh, dryRun: true, write: () => {} })[0]!.title, /qemu-system-x86/);
    assert.equal(await runInstall(['vm-image'], { stateDir: fresh, dryRun: true, write: (l) => lines.push(l) }), true);
    assert.ok(lines.some((l) => /would download linux-image-cloud-amd64/.test(l)), lines.join('\n'));
    assert.equal(fs.existsSync(fresh), false);
  });

  it('builds the guest into the state directory and boots it once', async () => {
    const lines: string[] = [];
    assert.equal(await runInstall(['vm-image'], { stateDir, dryRun: false, write: (l) => lines.push(l) }), true, lines.join('\n'));
    const expected = await cachedGuestImage();
    const imagesDir = guestImagesDir(stateDir);
    assert.equal(fs.readFileSync(path.join(imagesDir, 'current'), 'utf8').trim(), expected.inputDigest);
    assert.ok(lines.some((l) => l.includes(`output sha256:${expected.outputDigest}`)), lines.join('\n'));
    assert.ok(lines.some((l) => /booted in \d+ ms, `uname -r` → 6\.\d+\.\d+-\d+-cloud-amd64/.test(l)), lines.join('\n'));
    // The test boot left no VM directory behind.
    assert.deepEqual(fs.readdirSync(path.join(stateDir, 'vm-run')), []);
  });
});
