import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ID_SHIFT } from '../../src/image/ids.js';
import { ImageStore } from '../../src/image/pull.js';
import { parseReference } from '../../src/image/reference.js';
import { applyLayer } from '../../src/image/unpack.js';
import { capture } from '../../src/process/run.js';
import http from 'node:http';
import { buildTestImages, freePort, startRegistry, type TestImage, type TestRegistry } from '@sandfleet/test-helpers';

/**
 * A minimal registry with Docker Hub-style token auth: /v2/ answers 401 with a Bearer challenge
 * whose realm is our /token, which wants Basic credentials and returns a token the registry checks.
 */
async function startTokenRegistry(image: TestImage, user: string, password: string) {
  const token = 'token-for-' + user;
  const blobs = new Map([...image.blobs, ...image.childManifests, image.manifest].map((b) => [b.digest, b]));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      const ok = req.headers.authorization === `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      const scopeOk = url.searchParams.get('scope') === 'repository:tok/busybox:pull' && url.searchParams.get('service') === 'test-registry';
      res.writeHead(ok && scopeOk ? 200 : 401, { 'content-type': 'application/json' }).end(ok && scopeOk ? JSON.stringify({ token }) : '{}');
      return;
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      const realm = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="test-registry",scope="repository:tok/busybox:pull"` }).end();
      return;
    }
    const m = /^\/v2\/tok\/busybox\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    const blob = m ? (m[2] === '1' ? image.manifest : blobs.get(m[2]!)) : undefined;
    if (!blob) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': blob.mediaType }).end(blob.data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(server.address() as { port: number }).port}`, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

const noop = () => {};
/** The test registries listen on loopback, which pulls may only reach when the operator allows it. */
const LOCAL = { allowedPrivateRegistries: ['127.0.0.1'] };

describe('image references', () => {
  it('applies Docker defaults', () => {
    assert.equal(parseReference('busybox').canonical, 'docker.io/library/busybox:latest');
    assert.equal(parseReference('sourcegraph/executor-vm:5.0').canonical, 'docker.io/sourcegraph/executor-vm:5.0');
    const local = parseReference('localhost:5000/x');
    assert.deepEqual([local.registry, local.repository, local.tag], ['localhost:5000', 'x', 'latest']);
    const pinned = parseReference(`127.0.0.1:5000/a/b:1@sha256:${'a'.repeat(64)}`);
    assert.deepEqual([pinned.registry, pinned.repository, pinned.tag, pinned.digest], ['127.0.0.1:5000', 'a/b', '1', `sha256:${'a'.repeat(64)}`]);
    assert.throws(() => parseReference('Busybox'), /invalid repository component/);
    assert.throws(() => parseReference('busybox:bad tag'), /invalid tag/);
  });
});

describe('layer unpacking', () => {
  it('never writes outside the rootfs, whatever symlinks or names a layer holds', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-unpack-'));
    const sh = async (script: string) => {
      const r = await capture(['/bin/sh', '-ec', script], { cwd: dir, env: { PATH: '/usr/bin:/bin' } });
      assert.equal(r.exitCode, 0, r.stderr);
    };
    try {
      const outside = path.join(dir, 'outside');
      await fs.mkdir(outside);
      // Layer 1 plants symlinks to the host; layer 2 writes through them and names a parent dir.
      await sh(`mkdir l1 l2 l2/evil l2/rel && ln -s ${outside} l1/evil && ln -s ../../../../../../${outside.slice(1)} l1/rel && echo x > l2/evil/pwned && echo y > l2/rel/pwned2 && echo z > l2/escape`);
      await sh('tar -C l1 -cf layer1.tar . && tar -C l2 -cf layer2.tar ./evil/pwned ./rel/pwned2');
      await sh("tar -C l2 --transform='s,^\\./escape$,../escape,' -cf layer3.tar ./escape");
      const rootfs = path.join(dir, 'rootfs');
      await fs.mkdir(rootfs);
      const opts = { idShift: 0, idRange: 65536 };
      await applyLayer(rootfs, path.join(dir, 'layer1.tar'), 'application/vnd.oci.image.layer.v1.tar', opts);
      await applyLayer(rootfs, path.join(dir, 'layer2.tar'), 'application/vnd.oci.image.layer.v1.tar', opts);
      await assert.rejects(applyLayer(rootfs, path.join(dir, 'layer3.tar'), 'application/vnd.oci.image.layer.v1.tar', opts), /escapes the rootfs/);
      assert.deepEqual(await fs.readdir(outside), [], 'nothing was written through the symlinks');
      await assert.rejects(fs.access(path.join(dir, 'escape')));
      // Inside the rootfs the symlinks resolve as if it were `/`.
      assert.equal(await fs.readFile(path.join(rootfs, outside, 'pwned'), 'utf8'), 'x\n');
      assert.equal(await fs.readFile(path.join(rootfs, outside, 'pwned2'), 'utf8'), 'y\n');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('image pulls from a local registry', () => {
  let registry: TestRegistry;
  let authRegistry: TestRegistry;
  let stateDir: string;

  before(async () => {
    const images = await buildTestImages();
    registry = await startRegistry();
    authRegistry = await startRegistry({ auth: { username: 'ci', password: 's3cret-pass' } });
    await registry.push('test/busybox', '1', images.busybox);
    await registry.push('test/busybox-root', '1', images.busyboxRoot);
    await authRegistry.push('private/busybox', '1', images.busyboxRoot);
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-images-'));
  });
  after(async () => {
    await registry?.stop();
    await authRegistry?.stop();
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  it('pulls a manifest list, picks linux/amd64 and honours whiteouts', async () => {
    const lines: string[] = [];
    const store = new ImageStore(stateDir, [], LOCAL);
    const pulled = await store.pull(`${registry.host}/test/busybox:1`, { progress: (l) => lines.push(l), signal: AbortSignal.timeout(30_000) });
    assert.equal(pulled.config.user, '1000:1000');
    assert.ok(pulled.config.env.includes('IMAGE_VAR=from-image'));
    assert.ok(pulled.rootfs.startsWith(path.join(stateDir, 'images/rootfs/')));
    await assert.rejects(fs.access(path.join(pulled.rootfs, 'etc/removed')));
    assert.deepEqual(await fs.readdir(path.join(pulled.rootfs, 'opt/stuff')), ['new']);
    const home = await fs.stat(path.join(pulled.rootfs, 'home/user'));
    assert.equal(home.uid, ID_SHIFT + 1000, 'image ids are shifted onto unprivileged host ids');
    assert.equal((await fs.lstat(path.join(pulled.rootfs, 'bin/sh'))).isSymbolicLink(), true);
    assert.ok(lines.some((l) => /^pulling 127\.0\.0\.1:\d+\/test\/busybox:1 … layer sha256:[0-9a-f]{12}… [\d.]+ (kB|MB)$/.test(l)), lines.join('\n'));
  });

  it('shares one download and one unpack between concurrent pulls', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-images-'));
    try {
      const store = new ImageStore(dir, [], LOCAL);
      const pulls = await Promise.all([1, 2, 3].map(() => store.pull(`${registry.host}/test/busybox-root:1`, { progress: noop, signal: AbortSignal.timeout(30_000) })));
      assert.equal(new Set(pulls.map((p) => p.rootfs)).size, 1);
      assert.deepEqual(await fs.readdir(path.join(dir, 'images/blobs/tmp')), []);
      assert.deepEqual((await fs.readdir(path.join(dir, 'images/rootfs'))).filter((n) => n.startsWith('.tmp')), []);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('pulls through a mirror when the image registry is unreachable', async () => {
    const dead = await freePort();
    const store = new ImageStore(await fs.mkdtemp(path.join(stateDir, 'm-')), [`127.0.0.1:${dead}=${registry.url}`], LOCAL);
    const lines: string[] = [];
    const pulled = await store.pull(`127.0.0.1:${dead}/test/busybox:1`, { progress: (l) => lines.push(l), signal: AbortSignal.timeout(30_000) });
    assert.equal(pulled.config.user, '1000:1000');
    assert.ok(lines.some((l) => l.includes(`from mirror ${registry.url}`)));
  });

  it('tries the next endpoint when the first mirror is down', async () => {
    const dead = await freePort();
    const store = new ImageStore(await fs.mkdtemp(path.join(stateDir, 'm-')), [`${registry.host}=http://127.0.0.1:${dead}`], LOCAL);
    const pulled = await store.pull(`${registry.host}/test/busybox-root:1`, { progress: noop, signal: AbortSignal.timeout(30_000) });
    assert.equal(pulled.config.user, '');
  });

  it('fails clearly when the registry is unreachable or the image is missing', async () => {
    const dead = await freePort();
    const store = new ImageStore(stateDir, [], LOCAL);
    await assert.rejects(store.pull(`127.0.0.1:${dead}/test/busybox:1`, { progress: noop, signal: AbortSignal.timeout(30_000) }),
      new RegExp(`cannot pull 127\\.0\\.0\\.1:${dead}/test/busybox:1 from 127\\.0\\.0\\.1:${dead}: registry unreachable`));
    await assert.rejects(store.pull(`${registry.host}/test/nope:1`, { progress: noop, signal: AbortSignal.timeout(30_000) }),
      /cannot pull 127\.0\.0\.1:\d+\/test\/nope:1 from 127\.0\.0\.1:\d+: manifest 1 not found \(HTTP 404\)/);
  });

  it('follows a Bearer challenge to the token realm with Basic credentials', async () => {
    const images = await buildTestImages();
    const tokenRegistry = await startTokenRegistry(images.busybox, 'robot', 'tok-pass');
    try {
      const store = new ImageStore(await fs.mkdtemp(path.join(stateDir, 't-')), [], LOCAL);
      const image = `${tokenRegistry.host}/tok/busybox:1`;
      const auth = (pw: string) => ({ auths: { [tokenRegistry.host]: { auth: Buffer.from(`robot:${pw}`).toString('base64') } } });
      await assert.rejects(store.pull(image, { auth: auth('nope'), progress: noop, signal: AbortSignal.timeout(30_000) }),
        /cannot pull 127\.0\.0\.1:\d+\/tok\/busybox:1 from 127\.0\.0\.1:\d+: the token service http:\/\/127\.0\.0\.1:\d+ rejected the credentials for user "robot" \(HTTP 401\)/);
      const pulled = await store.pull(image, { auth: auth('tok-pass'), progress: noop, signal: AbortSignal.timeout(30_000) });
      assert.equal(pulled.config.user, '1000:1000');
    } finally {
      await tokenRegistry.stop();
    }
  });

  it('authenticates with dockerAuthConfig and rejects a wrong credential clearly', async () => {
    const image = `${authRegistry.host}/private/busybox:1`;
    const store = new ImageStore(await fs.mkdtemp(path.join(stateDir, 'a-')), [], LOCAL);
    await assert.rejects(store.pull(image, { progress: noop, signal: AbortSignal.timeout(30_000) }), /requires authentication and no credentials are configured/);
    const wrong = { auths: { [authRegistry.host]: { auth: Buffer.from('ci:wrong').toString('base64') } } };
    await assert.rejects(store.pull(image, { auth: wrong, progress: noop, signal: AbortSignal.timeout(30_000) }),
      /cannot pull 127\.0\.0\.1:\d+\/private\/busybox:1 from 127\.0\.0\.1:\d+: the registry rejected the credentials for user "ci" \(HTTP 401\)/);
    const right = { auths: { [`http://${authRegistry.host}`]: { auth: Buffer.from('ci:s3cret-pass').toString('base64') } } };
    const pulled = await store.pull(image, { auth: right, progress: noop, signal: AbortSignal.timeout(30_000) });
    assert.equal(pulled.config.user, '');
  });
});
