import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { makeTempDir } from '@sandfleet/test-helpers';
import { FAKE_FIRECRACKER_BIN, FAKE_FIRECRACKER_VERSION } from '@sandfleet/test-helpers/fake-firecracker';
import { vmReport } from '../../src/cli/vm-report.js';
import { loadConfig } from '../../src/config.js';
import { guestImageOutputDigest, guestImagesDir } from '../../src/sandbox/vm/guest-image.js';
import { SYSTEM_PATH } from '../../src/sandbox/shared/host.js';

const BASE = { EXECUTOR_FRONTEND_URL: 'http://127.0.0.1:3080', EXECUTOR_FRONTEND_PASSWORD: 'secret-token', EXECUTOR_QUEUE_NAME: 'batches' };
const work = makeTempDir('sandfleet-vm-report-', { untilFileEnds: true });
const INTEL = 'flags\t\t: fpu vme vmx sse2\n';
const PVM = 'flags\t\t: fpu vme sse2\n';

/** A small installed image: the report checks files and digests, it does not boot them here. */
function installImage(stateDir: string): { dir: string; digest: string } {
  const digest = 'a'.repeat(64);
  const dir = path.join(guestImagesDir(stateDir), digest);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'vmlinux'), 'kernel bytes');
  fs.writeFileSync(path.join(dir, 'initramfs.cpio'), 'initramfs bytes');
  const outputDigest = guestImageOutputDigest({ kernelPath: path.join(dir, 'vmlinux'), initrdPath: path.join(dir, 'initramfs.cpio') });
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ format: 'x', kernelRelease: '6.1.0-test', inputDigest: digest, outputDigest, packages: {} }));
  fs.writeFileSync(path.join(guestImagesDir(stateDir), 'current'), `${digest}\n`);
  return { dir, digest };
}

function configFor(stateDir: string, env: Record<string, string> = {}) {
  return loadConfig({ ...BASE, EXECUTOR_STATE_DIR: stateDir, PATH: SYSTEM_PATH, ...env });
}

describe('validate: the VM report', () => {
  it('reports KVM, the VMM binaries with versions, and a missing guest image with its fix', async () => {
    const stateDir = path.join(work, 'empty');
    const kvm = { device: path.join(work, 'no-kvm'), cpuinfo: INTEL, modules: '' };
    const lines = await vmReport(configFor(stateDir), { bootTest: false, kvm });
    const text = lines.map((l) => `${l.level} ${l.text}`).join('\n');
    assert.match(text, /^warn KVM: .*no-kvm absent.* VMs run under TCG$/m);
    assert.match(text, /^ok qemu-system-x86_64: QEMU emulator version \d+\.\d+/m);
    assert.match(text, /^warn firecracker: not found; .*EXECUTOR_FIRECRACKER_BIN/m);
    assert.match(text, /^info jailer: not found/m);
    assert.match(text, /^warn guest image: no guest image installed .*executor install vm-image/m);
  });

  it('names a PVM /dev/kvm, shows the operator\'s firecracker version, and verifies the image digests', async () => {
    const stateDir = path.join(work, 'installed');
    const { dir, digest } = installImage(stateDir);
    const device = path.join(work, 'kvm');
    fs.writeFileSync(device, '');
    const config = configFor(stateDir, { EXECUTOR_FIRECRACKER_BIN: FAKE_FIRECRACKER_BIN });
    const pvm = (await vmReport(config, { bootTest: true, kvm: { device, cpuinfo: PVM, modules: 'kvm_pvm 1 0\n' } })).map((l) => `${l.level} ${l.text}`).join('\n');
    assert.match(pvm, /^warn KVM: .*modules: kvm_pvm — .*cannot boot a stock/m);
    assert.match(pvm, new RegExp(`^ok firecracker: Firecracker v${FAKE_FIRECRACKER_VERSION.replaceAll('.', '\\.')} `, 'm'));
    assert.match(pvm, new RegExp(`^ok guest image: ${dir}, kernel 6\\.1\\.0-test, input sha256:${digest}, output sha256:[0-9a-f]{64} \\(verified\\)$`, 'm'));
    assert.doesNotMatch(pvm, /KVM test boot/, 'no test boot where KVM is known to be unusable');

    const usable = (await vmReport(config, { bootTest: false, kvm: { device, cpuinfo: INTEL, modules: 'kvm_intel 1 0\n' } })).map((l) => `${l.level} ${l.text}`).join('\n');
    assert.match(usable, /^ok KVM: .*CPU flag: vmx; modules: kvm_intel$/m);
    assert.match(usable, /KVM test boot: not run \(executor validate --boot-test\)/);

    fs.appendFileSync(path.join(dir, 'initramfs.cpio'), 'tampered');
    const tampered = (await vmReport(config, { bootTest: false, kvm: { device, cpuinfo: PVM, modules: '' } })).map((l) => `${l.level} ${l.text}`).join('\n');
    assert.match(tampered, /^warn guest image: .* modified since the build/m);
  });
});
