import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { writeCpio, type CpioEntry } from '../../src/sandbox/vm/cpio.js';
import { detectCompression, extractVmlinux, KernelImageError, locatePayload } from '../../src/sandbox/vm/kernel.js';
import { decodeLz4Block, decodeLz4Legacy, Lz4Error } from '../../src/sandbox/vm/lz4.js';
import { dynamicLinking, ElfError } from '../../src/sandbox/vm/elf.js';
import { kernelModules, moduleLoadOrder, programWithLibraries, VSOCK_TOOL_PATH } from '../../src/sandbox/vm/guest-image.js';
import { guestPackages } from './fixtures.js';

describe('guest image formats', { timeout: 180_000 }, () => {
  let dir: string;
  let bzImage: Buffer;
  let unpacked: string;
  before(async () => {
    dir = makeTempDir('sandfleet-vm-format-');
    unpacked = path.join(dir, 'kernel');
    const { kernelDeb } = await guestPackages();
    assert.equal(spawnSync('dpkg-deb', ['-x', kernelDeb, unpacked]).status, 0);
    const boot = fs.readdirSync(path.join(unpacked, 'boot')).find((f) => f.startsWith('vmlinuz-'))!;
    bzImage = fs.readFileSync(path.join(unpacked, 'boot', boot));
  });
  after(() => removeTempDir(dir));

  it('extracts the same vmlinux from the bzImage as the lz4 tool does', () => {
    const { offset, length } = locatePayload(bzImage);
    const payload = bzImage.subarray(offset, offset + length);
    assert.equal(detectCompression(payload), 'lz4');
    // lz4 exits 1 on the size the kernel build appends after the frame, having written everything.
    const reference = spawnSync('lz4', ['-dc'], { input: payload, maxBuffer: 1 << 30 }).stdout;
    assert.ok(reference.length > 1 << 20);
    assert.ok(extractVmlinux(bzImage).equals(reference));
  });

  it('rejects what is not a bzImage or a sound LZ4 stream with a typed error', () => {
    assert.throws(() => extractVmlinux(Buffer.alloc(4096)), KernelImageError);
    const forged = Buffer.from(bzImage.subarray(0, 0x300));
    forged.writeUInt32LE(0x7fffffff, 0x24c);
    assert.throws(() => locatePayload(forged), /past the end/);
    // A match reaching before the start of the output, and literals running past the block.
    assert.throws(() => decodeLz4Block(Buffer.from([0x10, 0x41, 0x05, 0x00]), 64), Lz4Error);
    assert.throws(() => decodeLz4Block(Buffer.from([0xf0, 0xff, 0xff]), 64), Lz4Error);
    assert.throws(() => decodeLz4Block(Buffer.from([0x80, 0x41]), 64), Lz4Error);
    assert.throws(() => decodeLz4Legacy(Buffer.from('not lz4')), Lz4Error);
  });

  it('decodes overlapping LZ4 matches (a run of one byte)', () => {
    // Literal "ab", then a match at offset 2 of length 4 + 2: "ababababab"... then final literal "!".
    assert.equal(decodeLz4Block(Buffer.from([0x22, 0x61, 0x62, 0x02, 0x00, 0x10, 0x21]), 64).toString(), 'abababab!');
  });

  it('reads a program\'s interpreter and needed libraries from its ELF headers, and refuses what is not ELF', () => {
    const node = dynamicLinking(fs.readFileSync(process.execPath));
    assert.equal(node.interpreter, '/lib64/ld-linux-x86-64.so.2');
    assert.ok(node.needed.includes('libc.so.6'), node.needed.join(' '));
    assert.throws(() => dynamicLinking(Buffer.from('#!/bin/sh\n')), ElfError);
    const truncated = Buffer.from(fs.readFileSync(process.execPath).subarray(0, 64));
    assert.throws(() => dynamicLinking(truncated), /past the end/);
  });

  it('takes socat with exactly the libraries it links, from its Debian packages', async () => {
    const tree = path.join(dir, 'socat');
    for (const deb of (await guestPackages()).vsockToolDebs) assert.equal(spawnSync('dpkg-deb', ['-x', deb, tree]).status, 0);
    const entries = programWithLibraries(tree, VSOCK_TOOL_PATH);
    const paths = entries.map((e) => e.path);
    assert.equal(paths[0], VSOCK_TOOL_PATH);
    assert.ok(paths.includes('lib64/ld-linux-x86-64.so.2'), paths.join(' '));
    for (const lib of ['libc.so.6', 'libssl.so.3', 'libcrypto.so.3', 'libwrap.so.0']) assert.ok(paths.includes(`lib/x86_64-linux-gnu/${lib}`), `${lib} missing: ${paths.join(' ')}`);
    // Every library a taken file needs is taken too, and nothing else from libc6's dozens.
    const taken = new Set(paths.map((p) => path.basename(p)));
    for (const e of entries) if (e.type === 'file') for (const n of dynamicLinking(e.data).needed) assert.ok(taken.has(n), `${e.path} needs ${n}`);
    assert.ok(!taken.has('libm.so.6'), 'a library nothing links was taken');
  });

  it('orders the agent channel modules after their dependencies', () => {
    const files = kernelModules(path.join(unpacked, 'lib', 'modules'));
    const order = moduleLoadOrder(files, ['virtio_mmio', 'virtio_console']);
    assert.deepEqual(new Set(order), new Set(['virtio_ring', 'virtio', 'virtio_mmio', 'virtio_console']));
    assert.ok(order.indexOf('virtio_ring') < order.indexOf('virtio') && order.indexOf('virtio') < order.indexOf('virtio_mmio'), order.join(' '));
  });

  it('writes a cpio newc archive busybox unpacks, the same bytes whatever the entry order', () => {
    const entries: CpioEntry[] = [
      { path: 'bin', type: 'dir', mode: 0o755 },
      { path: 'bin/tool', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/sh\necho odd length\n') },
      { path: 'bin/link', type: 'symlink', target: 'tool' },
      { path: 'etc', type: 'dir', mode: 0o755 },
      { path: 'etc/empty', type: 'file', mode: 0o600, data: Buffer.alloc(0) },
    ];
    const archive = writeCpio(entries);
    assert.ok(writeCpio([...entries].reverse()).equals(archive));
    const out = path.join(dir, 'cpio-out');
    fs.mkdirSync(out);
    const r = spawnSync('busybox', ['cpio', '-i', '-d'], { cwd: out, input: archive });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(fs.readFileSync(path.join(out, 'bin/tool'), 'utf8'), '#!/bin/sh\necho odd length\n');
    assert.equal(fs.statSync(path.join(out, 'bin/tool')).mode & 0o777, 0o755);
    assert.equal(fs.readlinkSync(path.join(out, 'bin/link')), 'tool');
    assert.equal(fs.statSync(path.join(out, 'etc/empty')).size, 0);
  });
});
