import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../src/image/pull.js';
import { capture } from '../../src/process/run.js';
import { imageOf, noop, startHostileRegistry, tar, timeout, type HostileRegistry } from './image-fixtures.js';

const LOCAL = { allowedPrivateRegistries: ['127.0.0.1'] };
const auth = (host: string, user: string, password: string) => ({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });

describe('the unpacked-image cache', () => {
  let registry: HostileRegistry;
  let privateRegistry: HostileRegistry;
  let dir: string;
  const popular = imageOf([tar([{ path: 'marker', data: 'the real image\n' }])]);
  // Reuses the popular image's (public) config blob, with its own layer.
  const poisoner = imageOf([tar([{ path: 'marker', data: 'poisoned\n' }])], { config: popular.config });

  before(async () => {
    registry = await startHostileRegistry();
    privateRegistry = await startHostileRegistry({ auth: { username: 'ci', password: 'private-pass' } });
    registry.push('popular/app', '1', popular);
    registry.push('evil/app', '1', poisoner);
    privateRegistry.push('team/secret', '1', imageOf([tar([{ path: 'secret', data: 'private bits\n' }])]));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-hostile-cache-'));
  });
  after(async () => {
    await registry?.stop();
    await privateRegistry?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is not poisoned by an image that reuses another image\'s config with its own layers', async () => {
    const store = new ImageStore(await fs.mkdtemp(path.join(dir, 's-')), [], LOCAL);
    await assert.rejects(store.pull(`${registry.host}/evil/app:1`, { progress: noop, signal: timeout() }),
      /cannot pull 127\.0\.0\.1:\d+\/evil\/app:1 from .*layer content does not match the image config: diff_id sha256:[0-9a-f]{64} expected/);
    for (const ref of [`${registry.host}/popular/app:1`, `${registry.host}/popular/app@${popular.manifest.digest}`]) {
      const pulled = await store.pull(ref, { progress: noop, signal: timeout() });
      assert.equal(await fs.readFile(path.join(pulled.rootfs, 'marker'), 'utf8'), 'the real image\n', ref);
    }
  });

  it('refuses blobs whose bytes do not hash to their digest, and layer counts the config does not list', async () => {
    const store = new ImageStore(await fs.mkdtemp(path.join(dir, 's-')), [], LOCAL);
    const real = imageOf([tar([{ path: 'marker', data: 'real\n' }])]);
    const flipped = (data: Buffer) => {
      const copy = Buffer.from(data);
      copy[copy.length - 1]! ^= 1;
      return copy;
    };
    const forged = { ...real.layers[0]!, data: flipped(real.layers[0]!.data) };
    registry.pushRaw('forged/layer', '1', real.manifest, [real.config, forged]);
    await assert.rejects(store.pull(`${registry.host}/forged/layer:1`, { progress: noop, signal: timeout() }), /blob digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:/);
    const forgedConfig = { ...real.config, data: flipped(real.config.data) };
    registry.pushRaw('forged/config', '1', real.manifest, [forgedConfig, ...real.layers]);
    await assert.rejects(new ImageStore(await fs.mkdtemp(path.join(dir, 's-')), [], LOCAL).pull(`${registry.host}/forged/config:1`, { progress: noop, signal: timeout() }), /blob digest mismatch/);
    // One more layer than the reused config lists.
    const extra = imageOf([tar([{ path: 'marker', data: 'the real image\n' }]), tar([{ path: 'extra', data: 'x' }])], { config: popular.config });
    registry.push('evil/extra', '1', extra);
    await assert.rejects(store.pull(`${registry.host}/evil/extra:1`, { progress: noop, signal: timeout() }), /the image config lists 1 layer diff_ids for a manifest with 2 layers/);
  });

  it('keys a rootfs by config and layers, so two images sharing a config never share one', async () => {
    // Even with diff_ids that match (a config listing the poisoner's layer), the slots differ.
    const store = new ImageStore(await fs.mkdtemp(path.join(dir, 's-')), [], LOCAL);
    const a = await store.pull(`${registry.host}/popular/app:1`, { progress: noop, signal: timeout() });
    await store.pull(`${registry.host}/evil/app:1`, { progress: noop, signal: timeout() }).catch(() => {});
    const again = await store.pull(`${registry.host}/popular/app:1`, { progress: noop, signal: timeout() });
    assert.equal(again.rootfs, a.rootfs);
    assert.equal(await fs.readFile(path.join(again.rootfs, 'marker'), 'utf8'), 'the real image\n');
  });

  it('serves a cached private image only to a job whose own credentials the registry accepts', async () => {
    const store = new ImageStore(await fs.mkdtemp(path.join(dir, 's-')), [], LOCAL);
    const image = `${privateRegistry.host}/team/secret:1`;
    const pulled = await store.pull(image, { auth: auth(privateRegistry.host, 'ci', 'private-pass'), progress: noop, signal: timeout() });
    assert.equal(await fs.readFile(path.join(pulled.rootfs, 'secret'), 'utf8'), 'private bits\n');
    const digestRef = `${privateRegistry.host}/team/secret@${await manifestDigest(privateRegistry, 'team/secret')}`;
    for (const ref of [image, digestRef]) {
      await assert.rejects(store.pull(ref, { progress: noop, signal: timeout() }), /requires authentication and no credentials are configured/, ref);
      await assert.rejects(store.pull(ref, { auth: auth(privateRegistry.host, 'ci', 'guess'), progress: noop, signal: timeout() }), /rejected the credentials for user "ci"/, ref);
      // Credentials for some other registry do not count either.
      await assert.rejects(store.pull(ref, { auth: auth(registry.host, 'ci', 'private-pass'), progress: noop, signal: timeout() }), /requires authentication/, ref);
    }
  });

  it('keeps every directory and file of the cache root-only (0700 / 0600), also one an older executor made 0755', async () => {
    const stateDir = await fs.mkdtemp(path.join(dir, 'modes-'));
    await fs.mkdir(path.join(stateDir, 'images', 'blobs'), { recursive: true, mode: 0o755 });
    await fs.chmod(path.join(stateDir, 'images'), 0o755);
    await fs.chmod(path.join(stateDir, 'images', 'blobs'), 0o755);
    const store = new ImageStore(stateDir, [], LOCAL);
    const pulled = await store.pull(`${registry.host}/popular/app:1`, { progress: noop, signal: timeout() });
    await store.pull(`${registry.host}/popular/app:1`, { progress: noop, signal: timeout(), idShift: 0 });
    const cacheRoot = path.join(stateDir, 'images');
    const seen: string[] = [];
    const wrong: string[] = [];
    const walk = async (at: string) => {
      for (const entry of await fs.readdir(at, { withFileTypes: true })) {
        const full = path.join(at, entry.name);
        const mode = (await fs.lstat(full)).mode & 0o7777;
        seen.push(path.relative(cacheRoot, full));
        // An unpacked image's own tree (from its root on) is the image's, not the cache's.
        const isImageRoot = /^rootfs[^/]*$/.test(path.relative(cacheRoot, at));
        if (isImageRoot) {
          if (mode & 0o002) wrong.push(`${full} ${mode.toString(8)} (world-writable image root)`);
          continue;
        }
        if (mode !== (entry.isDirectory() ? 0o700 : 0o600)) wrong.push(`${full} ${mode.toString(8)}`);
        if (entry.isDirectory()) await walk(full);
      }
    };
    assert.equal((await fs.stat(cacheRoot)).mode & 0o7777, 0o700);
    await walk(cacheRoot);
    assert.deepEqual(wrong, []);
    for (const made of ['blobs/sha256', 'blobs/tmp', 'rootfs', 'rootfs-shift0', 'usage', `rootfs/${path.basename(pulled.rootfs)}`]) assert.ok(seen.includes(made), `${made} in ${seen.join(', ')}`);
  });

  it('evicts the least recently used images beyond its budget, never one in use', async () => {
    const stateDir = await fs.mkdtemp(path.join(dir, 'lru-'));
    const images = ['one', 'two', 'three'].map((name) => {
      const img = imageOf([tar([{ path: 'name', data: `${name}\n` }, { path: 'filler', data: Buffer.alloc(64 * 1024, name) }])]);
      registry.push(`lru/${name}`, '1', img);
      return img;
    });
    assert.equal(images.length, 3);
    // Earlier pulls by another executor process (its own store) on the same state dir.
    const earlier = new ImageStore(stateDir, [], LOCAL);
    const one = await earlier.pull(`${registry.host}/lru/one:1`, { progress: noop, signal: timeout() });
    const two = await earlier.pull(`${registry.host}/lru/two:1`, { progress: noop, signal: timeout() });
    await fs.utimes(path.join(stateDir, 'images/usage', `rootfs-${path.basename(one.rootfs)}.json`), new Date(1000), new Date(1000));
    await fs.utimes(path.join(stateDir, 'images/usage', `rootfs-${path.basename(two.rootfs)}.json`), new Date(2000), new Date(2000));
    for (const blob of [images[0]!.config, ...images[0]!.layers]) await fs.utimes(earlier.blobs.pathOf(blob.digest), new Date(1000), new Date(1000));
    // `two` is mounted (as a step root's lower dir would be): it stays, though it is old.
    const mnt = await fs.mkdtemp(path.join(dir, 'mnt-'));
    assert.equal((await capture(['mount', '--bind', '-o', 'ro', two.rootfs, mnt], { env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } })).exitCode, 0);
    try {
      const store = new ImageStore(stateDir, [], { ...LOCAL, cacheBytes: 150 * 1024 });
      const three = await store.pull(`${registry.host}/lru/three:1`, { progress: noop, signal: timeout() });
      await assert.rejects(fs.access(one.rootfs), 'the least recently used image was evicted');
      assert.equal(await fs.readFile(path.join(two.rootfs, 'name'), 'utf8'), 'two\n', 'a mounted image is never evicted');
      assert.equal(await fs.readFile(path.join(three.rootfs, 'name'), 'utf8'), 'three\n', 'the image just pulled stays');
      await assert.rejects(fs.access(earlier.blobs.pathOf(images[0]!.layers[0]!.digest)), 'its blobs went with it');
      assert.deepEqual((await fs.readdir(path.dirname(one.rootfs))).filter((n) => n.startsWith('.tmp')), []);
      // An evicted image is simply pulled again.
      const back = await store.pull(`${registry.host}/lru/one:1`, { progress: noop, signal: timeout() });
      assert.equal(await fs.readFile(path.join(back.rootfs, 'name'), 'utf8'), 'one\n');
    } finally {
      await capture(['umount', mnt], { env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } });
    }
  });
});

async function manifestDigest(registry: HostileRegistry, repository: string): Promise<string> {
  const r = await fetch(`${registry.url}/v2/${repository}/manifests/1`, { headers: { authorization: `Basic ${Buffer.from('ci:private-pass').toString('base64')}` } });
  return `sha256:${createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex')}`;
}
