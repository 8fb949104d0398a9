import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Resolver } from '../../src/image/address-policy.js';
import { ImageStore, type ImageStoreOptions } from '../../src/image/pull.js';
import { imageOf, noop, startHostileRegistry, startSpy, tar, timeout, type HostileRegistry, type Spy } from './image-fixtures.js';

/**
 * Registries, token realms and redirects that point at private addresses. Every target here is a
 * loopback address (127.0.0.1 or 127.0.0.2), so even a broken check sends nothing off this
 * machine; the spies prove that a refused target was never even connected to.
 */
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const auth = (entries: Record<string, [string, string]>) => ({
  auths: Object.fromEntries(Object.entries(entries).map(([host, [u, p]]) => [host, { auth: Buffer.from(`${u}:${p}`).toString('base64') }])),
});
/** `*.test` names resolve to whatever the test says, everything else fails. */
const resolverOf = (names: Record<string, string>): Resolver => async (hostname) => {
  const address = names[hostname];
  if (!address) throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
  return [{ address, family: address.includes(':') ? 6 : 4 }];
};

describe('registry, realm and redirect targets', () => {
  let registry: HostileRegistry;
  let spy: Spy;
  let spy2: Spy;
  let dir: string;
  const image = imageOf([tar([{ path: 'hello', data: 'hi\n' }])]);

  before(async () => {
    registry = await startHostileRegistry();
    registry.push('app/x', '1', image);
    spy = await startSpy('127.0.0.1');
    spy2 = await startSpy('127.0.0.2');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-hostile-net-'));
  });
  after(async () => {
    await registry?.stop();
    await spy?.stop();
    await spy2?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const store = async (options: ImageStoreOptions = {}, mirrors: string[] = []) => new ImageStore(await fs.mkdtemp(path.join(dir, 's-')), mirrors, options);
  const onlyRegistry = () => ({ allowedPrivateRegistries: [registry.host] });

  it('refuses a job-named registry on a private address unless the operator allowed it', async () => {
    const seen = registry.connections();
    await assert.rejects((await store()).pull(`${registry.host}/app/x:1`, { progress: noop, signal: timeout() }),
      /cannot pull 127\.0\.0\.1:\d+\/app\/x:1 from 127\.0\.0\.1:\d+: 127\.0\.0\.1:\d+ is a private or reserved address; image pulls only reach public addresses unless the registry is a configured mirror or listed in EXECUTOR_ALLOWED_PRIVATE_REGISTRIES/);
    await assert.rejects((await store({ allowedPrivateRegistries: ['127.0.0.1:1'] })).pull(`${registry.host}/app/x:1`, { progress: noop, signal: timeout() }), /is a private or reserved address/);
    const named = await store({ resolver: resolverOf({ 'registry.test': '127.0.0.1' }) });
    await assert.rejects(named.pull(`registry.test:${registry.port}/app/x:1`, { progress: noop, signal: timeout() }), /registry\.test:\d+ resolves to a private or reserved address \(127\.0\.0\.1\)/);
    const mapped = await store({ resolver: resolverOf({ 'mapped.test': '::ffff:127.0.0.1' }) });
    await assert.rejects(mapped.pull(`mapped.test:${registry.port}/app/x:1`, { progress: noop, signal: timeout() }), /resolves to a private or reserved address \(::ffff:127\.0\.0\.1\)/);
    assert.equal(registry.connections(), seen, 'nothing connected to the refused registry');
    // Allowed by host:port or by host: the same pull works.
    for (const allowed of [registry.host, '127.0.0.1']) {
      const pulled = await (await store({ allowedPrivateRegistries: [allowed] })).pull(`${registry.host}/app/x:1`, { progress: noop, signal: timeout() });
      assert.equal(await fs.readFile(path.join(pulled.rootfs, 'hello'), 'utf8'), 'hi\n');
    }
  });

  it('refuses a token realm on a private address without connecting to it', async () => {
    const realms = [`http://127.0.0.1:${spy.port}/token`, `http://meta.test:${spy2.port}/token`, `http://[::ffff:127.0.0.1]:${spy.port}/token`];
    for (const realm of realms) {
      registry.override = (_req, res) => {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="x"` }).end();
        return true;
      };
      const s = await store({ ...onlyRegistry(), resolver: resolverOf({ 'meta.test': '127.0.0.2' }) });
      await assert.rejects(s.pull(`${registry.host}/app/x:1`, { auth: auth({ [registry.host]: ['ci', 'pw'] }), progress: noop, signal: timeout() }),
        /token realm refused: \S+ (is|resolves to) a private or reserved address/, realm);
    }
    registry.override = undefined;
    assert.equal(spy.connections() + spy2.connections(), 0, 'no realm was contacted, so no credentials went there');
  });

  it('refuses redirects to private addresses without connecting to them', async () => {
    for (const [kind, target] of [['manifests', `http://127.0.0.1:${spy.port}/m`], ['blobs', `http://meta.test:${spy2.port}/b`], ['blobs', `http://127.0.0.2:${spy2.port}/b`]] as const) {
      registry.override = (_req, res, url) => {
        if (!url.pathname.includes(`/${kind}/`)) return false;
        res.writeHead(307, { location: target }).end();
        return true;
      };
      const s = await store({ ...onlyRegistry(), resolver: resolverOf({ 'meta.test': '127.0.0.2' }) });
      await assert.rejects(s.pull(`${registry.host}/app/x:1`, { progress: noop, signal: timeout() }), /\S+ (is|resolves to) a private or reserved address/, target);
    }
    registry.override = undefined;
    assert.equal(spy.connections() + spy2.connections(), 0);
  });

  it('never puts a registry\'s response body into errors or progress lines', async () => {
    const canary = 'LEAK42'; // short: JSON.parse errors quote the first 10 characters
    const answers: [string, (res: import('node:http').ServerResponse) => void][] = [
      ['not JSON', (res) => res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(`${canary}<html></html>`)],
      ['JSON but not an object', (res) => res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(JSON.stringify(canary))],
      ['an error page', (res) => res.writeHead(500, { 'content-type': 'text/html' }).end(`${canary}<h1></h1>`)],
      ['a bad token answer', (res) => res.writeHead(401, { 'www-authenticate': `Bearer realm="${registry.url}/token"` }).end(canary)],
    ];
    for (const [what, answer] of answers) {
      registry.override = (_req, res, url) => {
        if (url.pathname === '/token') res.writeHead(200, { 'content-type': 'application/json' }).end(`${canary}{"token": 1`);
        else answer(res);
        return true;
      };
      const lines: string[] = [];
      const err = await (await store(onlyRegistry())).pull(`${registry.host}/app/x:1`, { progress: (l) => lines.push(l), signal: timeout() }).then(() => undefined, (e: unknown) => e as Error);
      assert.ok(err, what);
      assert.doesNotMatch(`${err.message}\n${lines.join('\n')}`, new RegExp(canary), what);
    }
    registry.override = undefined;
  });

  it('sends a mirror only its own credentials, and mirrors only the registry it is configured for', async () => {
    const mirror = await startHostileRegistry({ auth: { username: 'mirror', password: 'mirror-pass' } });
    const origin = await startHostileRegistry({ auth: { username: 'origin', password: 'origin-pass' } });
    try {
      origin.push('app/x', '1', image);
      mirror.push('app/x', '1', image);
      const allow = { allowedPrivateRegistries: [origin.host] };
      // Only the origin's credentials: the mirror must not see them, the pull falls back to the origin.
      const originOnly = auth({ [origin.host]: ['origin', 'origin-pass'] });
      await (await store(allow, [`${origin.host}=${mirror.url}`])).pull(`${origin.host}/app/x:1`, { auth: originOnly, progress: noop, signal: timeout() });
      assert.ok(mirror.requests.length > 0, 'the mirror was asked first');
      assert.ok(mirror.requests.every((r) => r.authorization !== basic('origin', 'origin-pass')), 'the origin\'s credentials never went to the mirror');
      // With the mirror's own credentials the mirror serves the image, and sees only those.
      mirror.requests.length = 0;
      origin.requests.length = 0;
      const both = auth({ [origin.host]: ['origin', 'origin-pass'], [mirror.host]: ['mirror', 'mirror-pass'] });
      await (await store(allow, [`${origin.host}=${mirror.url}`])).pull(`${origin.host}/app/x:1`, { auth: both, progress: noop, signal: timeout() });
      assert.ok(mirror.requests.some((r) => r.authorization === basic('mirror', 'mirror-pass')));
      assert.ok(mirror.requests.every((r) => r.authorization !== basic('origin', 'origin-pass')));
      assert.equal(origin.requests.length, 0, 'the mirror served it');
      // A plain mirror URL mirrors Docker Hub, not this registry.
      mirror.requests.length = 0;
      await (await store(allow, [mirror.url])).pull(`${origin.host}/app/x:1`, { auth: both, progress: noop, signal: timeout() });
      assert.equal(mirror.requests.length, 0);
    } finally {
      await mirror.stop();
      await origin.stop();
    }
  });

  it('drops the Authorization header when a registry redirects to another host', async () => {
    const origin = await startHostileRegistry({ auth: { username: 'ci', password: 'pw' } });
    const cdn = await startHostileRegistry();
    try {
      origin.push('app/x', '1', image);
      for (const b of [image.config, ...image.layers]) cdn.pushRaw('app/x', 'unused', image.manifest, [b]);
      origin.override = (req, res, url) => {
        const m = /\/blobs\/(.+)$/.exec(url.pathname);
        if (!m || req.headers.authorization !== basic('ci', 'pw')) return false;
        res.writeHead(307, { location: `${cdn.url}/v2/app/x/blobs/${m[1]}` }).end();
        return true;
      };
      const s = await store({ allowedPrivateRegistries: ['127.0.0.1'] });
      const pulled = await s.pull(`${origin.host}/app/x:1`, { auth: auth({ [origin.host]: ['ci', 'pw'] }), progress: noop, signal: timeout() });
      assert.equal(await fs.readFile(path.join(pulled.rootfs, 'hello'), 'utf8'), 'hi\n');
      assert.ok(cdn.requests.length >= 2);
      assert.ok(cdn.requests.every((r) => r.authorization === undefined), 'the CDN never saw the registry credentials');
    } finally {
      await origin.stop();
      await cdn.stop();
    }
  });
});
