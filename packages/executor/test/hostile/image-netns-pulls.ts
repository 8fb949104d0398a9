/**
 * Run inside a network namespace that has only loopback, which also holds 203.0.113.5
 * (a documentation address, "public" to the address policy): pulls that reach "public" registries,
 * a name that rebinds to loopback between lookups, the coordinator-style mirror on loopback for
 * Docker Hub images, and realms/redirects to link-local and private literals. Nothing here can
 * leave the namespace: it has no route anywhere else. Prints one JSON object with the outcomes.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Resolver } from '../../src/image/address-policy.js';
import { ImageStore } from '../../src/image/pull.js';
import { imageOf, noop, startHostileRegistry, startSpy, tar, timeout } from './image-fixtures.js';

const PUBLIC = '203.0.113.5';
const results: Record<string, string> = {};
const outcome = async (name: string, run: () => Promise<unknown>) => {
  try {
    await run();
    results[name] = 'ok';
  } catch (err) {
    results[name] = `error: ${(err as Error).message}`;
  }
};

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-netns-pulls-'));
const image = imageOf([tar([{ path: 'hello', data: 'hi\n' }])]);
// Registries off loopback are spoken to over HTTPS; the parent test made this certificate and
// passed its CA in NODE_EXTRA_CA_CERTS.
const tlsDir = process.env.SANDFLEET_TEST_TLS_DIR ?? '';
const tls = { key: await fs.readFile(path.join(tlsDir, 'key.pem'), 'utf8'), cert: await fs.readFile(path.join(tlsDir, 'cert.pem'), 'utf8') };
const publicRegistry = await startHostileRegistry({ listenHost: PUBLIC, tls });
publicRegistry.push('app/x', '1', image);
// Same port on loopback: where a rebinding name would lead.
const loopbackSpy = await startSpy('127.0.0.1', publicRegistry.port);
const mirror = await startHostileRegistry();
mirror.push('sandfleet/demo', 'latest', image);
let rebindCalls = 0;
const resolver: Resolver = async (hostname) => {
  if (hostname === 'registry.test') return [{ address: PUBLIC, family: 4 }];
  if (hostname === 'rebind.test') return [{ address: rebindCalls++ === 0 ? PUBLIC : '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
};
const store = async (mirrors: string[] = []) => new ImageStore(await fs.mkdtemp(path.join(dir, 's-')), mirrors, { resolver });

try {
  await outcome('public', async () => (await store()).pull(`registry.test:${publicRegistry.port}/app/x:1`, { progress: noop, signal: timeout() }));
  await outcome('rebind', async () => (await store()).pull(`rebind.test:${publicRegistry.port}/app/x:1`, { progress: noop, signal: timeout() }));
  results.rebindLookups = String(rebindCalls);
  results.loopbackSpyConnections = String(loopbackSpy.connections());
  await outcome('demoMirror', async () => {
    const pulled = await (await store([mirror.url])).pull('sandfleet/demo:latest', { progress: noop, signal: timeout() });
    if ((await fs.readFile(path.join(pulled.rootfs, 'hello'), 'utf8')) !== 'hi\n') throw new Error('wrong content');
  });
  for (const [name, target] of [['realmMetadata', 'http://169.254.169.254/latest/meta-data'], ['realmPrivate', 'http://10.0.0.1/token']]) {
    publicRegistry.override = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${target}"` }).end();
      return true;
    };
    await outcome(name!, async () => (await store()).pull(`registry.test:${publicRegistry.port}/app/x:1`, { progress: noop, signal: timeout() }));
  }
  for (const [name, target] of [['redirectMetadata', 'http://169.254.169.254/latest/meta-data'], ['redirectPrivate', 'http://192.168.1.1/b'], ['redirectV6', 'http://[fd00::1]/b']]) {
    publicRegistry.override = (_req, res, url) => {
      if (!url.pathname.includes('/blobs/')) return false;
      res.writeHead(302, { location: target }).end();
      return true;
    };
    await outcome(name!, async () => (await store()).pull(`registry.test:${publicRegistry.port}/app/x:1`, { progress: noop, signal: timeout() }));
  }
} finally {
  await publicRegistry.stop();
  await loopbackSpy.stop();
  await mirror.stop();
  await fs.rm(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(results));
