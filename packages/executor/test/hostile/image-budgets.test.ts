import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createGzip, gzipSync } from 'node:zlib';
import { ImageStore } from '../../src/image/pull.js';
import { applyLayer } from '../../src/image/unpack.js';
import { UnpackBudget } from '../../src/image/limits.js';
import { blobOf, imageOf, manifestOf, noop, paxRecords, startHostileRegistry, tar, timeout, type HostileRegistry } from './image-fixtures.js';

const LOCAL = { allowedPrivateRegistries: ['127.0.0.1'] };
const MIB = 2 ** 20;
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

describe('image budgets', () => {
  let registry: HostileRegistry;
  let dir: string;
  before(async () => {
    registry = await startHostileRegistry();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-hostile-budget-'));
  });
  after(async () => {
    await registry?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const store = async (options: { maxImageBytes?: number; maxEntries?: number } = {}) => new ImageStore(await fs.mkdtemp(path.join(dir, 's-')), [], { ...LOCAL, ...options });

  it('refuses a manifest larger than 4 MiB', async () => {
    const image = imageOf([tar([{ path: 'a', data: 'a' }])]);
    const huge = JSON.parse(image.manifest.data.toString()) as Record<string, unknown>;
    huge.annotations = { padding: 'x'.repeat(5 * MIB) };
    registry.pushRaw('big/manifest', '1', blobOf(Buffer.from(JSON.stringify(huge)), image.manifest.mediaType), [image.config, ...image.layers]);
    await assert.rejects((await store()).pull(`${registry.host}/big/manifest:1`, { progress: noop, signal: timeout() }), /manifest 1 is larger than the 4 MiB limit/);
  });

  it('refuses an image config larger than 4 MiB', async () => {
    const layer = tar([{ path: 'a', data: 'a' }]);
    const base = imageOf([layer]);
    const config = blobOf(Buffer.from(JSON.stringify({ ...JSON.parse(base.config.data.toString()), padding: 'x'.repeat(5 * MIB) })), base.config.mediaType);
    registry.pushRaw('big/config', '1', manifestOf(config, base.layers), [config, ...base.layers]);
    await assert.rejects((await store()).pull(`${registry.host}/big/config:1`, { progress: noop, signal: timeout() }), /the image config is larger than the 4 MiB limit/);
  });

  it('refuses layers beyond EXECUTOR_IMAGE_MAX_SIZE, before and while downloading', async () => {
    const image = imageOf([tar([{ path: 'a', data: 'a' }])]);
    const layer = image.layers[0]!;
    // The manifest admits to a 2 GiB layer: refused before any download.
    registry.pushRaw('big/declared', '1', manifestOf(image.config, [{ ...layer, size: 2 * 2 ** 30 }]), [image.config, layer]);
    await assert.rejects((await store({ maxImageBytes: MIB })).pull(`${registry.host}/big/declared:1`, { progress: noop, signal: timeout() }), /the image is larger than the 1 MiB limit \(EXECUTOR_IMAGE_MAX_SIZE\)/);
    // Several layers that fit one by one but not together.
    const parts = [1, 2, 3].map((n) => blobOf(gzipSync(tar([{ path: `f${n}`, data: Buffer.alloc(400 * 1024, n) }])), LAYER));
    const cfg = imageOf([]).config;
    registry.pushRaw('big/total', '1', manifestOf(cfg, parts.map((p) => ({ ...p, size: 400 * 1024 }))), [cfg, ...parts]);
    await assert.rejects((await store({ maxImageBytes: MIB })).pull(`${registry.host}/big/total:1`, { progress: noop, signal: timeout() }), /larger than the 1 MiB limit/);
    // The manifest leaves the size out and the registry sends more than the budget.
    const big = blobOf(Buffer.alloc(3 * MIB, 7), LAYER);
    const oneLayerCfg = imageOf([tar([])]).config;
    const noSize = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: oneLayerCfg.mediaType, digest: oneLayerCfg.digest, size: oneLayerCfg.size }, layers: [{ mediaType: LAYER, digest: big.digest }] }));
    registry.pushRaw('big/stream', '1', blobOf(noSize, 'application/vnd.oci.image.manifest.v1+json'), [oneLayerCfg, big]);
    await assert.rejects((await store({ maxImageBytes: MIB })).pull(`${registry.host}/big/stream:1`, { progress: noop, signal: timeout() }), /is larger than the 1 MiB limit/);
  });

  it('stops a decompression bomb at the unpacked-size budget, with a clear message', async () => {
    // ~64 KiB of gzip that expands to 64 MiB.
    const bomb = tar([{ path: 'zeros', data: Buffer.alloc(64 * MIB) }]);
    const image = imageOf([bomb]);
    assert.ok(image.layers[0]!.size < MIB);
    registry.push('bomb/zeros', '1', image);
    const s = await store({ maxImageBytes: 8 * MIB });
    await assert.rejects(s.pull(`${registry.host}/bomb/zeros:1`, { progress: noop, signal: timeout() }), /the unpacked image is larger than the 8 MiB limit \(EXECUTOR_IMAGE_MAX_SIZE\)/);
    const rootfsDir = path.join(s.stateDir, 'images/rootfs');
    assert.deepEqual(await fs.readdir(rootfsDir).catch(() => []), [], 'nothing half-unpacked is left behind');
  });

  it('bounds the number of entries in an image', async () => {
    const files = Array.from({ length: 50 }, (_, i) => ({ path: `f${i}`, data: 'x' }));
    registry.push('many/files', '1', imageOf([tar(files)]));
    await assert.rejects((await store({ maxEntries: 20 })).pull(`${registry.host}/many/files:1`, { progress: noop, signal: timeout() }), /the image has more than 20 files/);
  });

  it('refuses PAX and GNU long-name records over 1 MiB without reading them into memory', async () => {
    const rootfs = await fs.mkdtemp(path.join(dir, 'root-'));
    const opts = { idShift: 0, idRange: 65536 };
    const pax = path.join(dir, 'pax.tar');
    await fs.writeFile(pax, tar([{ path: 'x', pax: { path: 'p'.repeat(2 * MIB) }, data: 'x' }]));
    await assert.rejects(applyLayer(rootfs, pax, 'application/vnd.oci.image.layer.v1.tar', opts), /PAX header record of \d+ bytes is larger than the 1048576-byte limit/);
    const long = path.join(dir, 'long.tar');
    await fs.writeFile(long, tar([{ path: '././@LongLink', type: 'L', data: 'n'.repeat(2 * MIB) }, { path: 'short', data: 'x' }]));
    await assert.rejects(applyLayer(rootfs, long, 'application/vnd.oci.image.layer.v1.tar', opts), /long name record of \d+ bytes is larger than the 1048576-byte limit/);
    // A 1 GiB PAX record that gzip shrinks to about 1 MiB: refused at its header, memory stays flat.
    const gz = path.join(dir, 'paxbomb.tar.gz');
    const head = Buffer.from(tar([{ path: 'PaxHeader', type: 'x', data: '' }]).subarray(0, 512));
    head.write((2 ** 30).toString(8).padStart(11, '0') + '\0', 124, 'ascii');
    head.write('        ', 148, 'ascii');
    let sum = 0;
    for (const b of head) sum += b;
    head.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    async function* body() {
      yield head;
      const zeros = Buffer.alloc(MIB);
      for (let i = 0; i < 1024; i++) yield zeros;
    }
    await pipeline(Readable.from(body()), createGzip({ level: 1 }), createWriteStream(gz));
    const rssBefore = process.memoryUsage().rss;
    await assert.rejects(applyLayer(rootfs, gz, LAYER, opts), /PAX header record of 1073741824 bytes is larger than the 1048576-byte limit/);
    assert.ok(process.memoryUsage().rss - rssBefore < 256 * MIB, 'the record was not buffered');
    assert.equal(paxRecords({ a: 'b' }).toString(), '6 a=b\n');
  });

  it('counts every layer of an image against one budget', async () => {
    const budget = new UnpackBudget({ maxImageBytes: 3 * MIB, maxEntries: 100 });
    const rootfs = await fs.mkdtemp(path.join(dir, 'root-'));
    const layer = path.join(dir, 'two-mib.tar');
    await fs.writeFile(layer, tar([{ path: 'two', data: Buffer.alloc(2 * MIB) }]));
    const opts = { idShift: 0, idRange: 65536, budget };
    await applyLayer(rootfs, layer, 'application/vnd.oci.image.layer.v1.tar', opts);
    await assert.rejects(applyLayer(rootfs, layer, 'application/vnd.oci.image.layer.v1.tar', opts), /larger than the 3 MiB limit/);
  });
});
