import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { capture } from '../../src/process/run.js';

const PATH_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
const here = path.dirname(fileURLToPath(import.meta.url));

async function must(argv: string[]): Promise<void> {
  const r = await capture(argv, { env: PATH_ENV });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
}

/**
 * Pulls from a "public" registry run in a network namespace this test creates, with no route
 * anywhere but its own loopback: realms and redirects to link-local and
 * private literals are refused, and if they were not, their packets still could not leave.
 */
describe('image pulls in an isolated network namespace', () => {
  const ns = `sf-img-${randomBytes(4).toString('hex')}`;
  let results: Record<string, string> = {};
  let tlsDir = '';

  before(async () => {
    tlsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-netns-tls-'));
    await must(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=registry.test',
      '-addext', 'subjectAltName=DNS:registry.test,DNS:rebind.test', '-keyout', path.join(tlsDir, 'key.pem'), '-out', path.join(tlsDir, 'cert.pem')]);
    await must(['ip', 'netns', 'add', ns]);
    await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    // The namespace's own loopback also holds the "public" address; there is no other interface.
    await must(['ip', '-n', ns, 'addr', 'add', '203.0.113.5/32', 'dev', 'lo']);
    const r = await capture(['ip', 'netns', 'exec', ns, process.execPath, '--import', 'tsx', path.join(here, 'image-netns-pulls.ts')], { env: { ...PATH_ENV, HOME: '/root', NODE_EXTRA_CA_CERTS: path.join(tlsDir, 'cert.pem'), SANDFLEET_TEST_TLS_DIR: tlsDir }, cwd: path.resolve(here, '../..') });
    if (r.exitCode !== 0) throw new Error(`pull script failed (${r.exitCode}): ${r.stderr}`);
    results = JSON.parse(r.stdout) as Record<string, string>;
  });
  after(async () => {
    await capture(['ip', 'netns', 'del', ns], { env: PATH_ENV });
    if (tlsDir) await fs.rm(tlsDir, { recursive: true, force: true });
  });

  it('pulls from a registry on a public address', () => {
    assert.equal(results.public, 'ok');
  });

  it('connects only to addresses it checked, whatever a rebinding name answers next', () => {
    assert.equal(results.loopbackSpyConnections, '0', 'the loopback listener behind the rebinding name was never reached');
    assert.ok(results.rebind === 'ok' || /rebind\.test:\d+ resolves to a private or reserved address \(127\.0\.0\.1\)/.test(results.rebind ?? ''), results.rebind);
  });

  it('keeps the operator\'s mirror on loopback working for Docker Hub images (the sandfleet up demo)', () => {
    assert.equal(results.demoMirror, 'ok');
  });

  it('refuses token realms and redirects to metadata and private addresses', () => {
    for (const name of ['realmMetadata', 'realmPrivate', 'redirectMetadata', 'redirectPrivate', 'redirectV6']) {
      assert.match(results[name] ?? '', /(169\.254\.169\.254|10\.0\.0\.1|192\.168\.1\.1|\[fd00::1\]) is a private or reserved address/, `${name}: ${results[name]}`);
    }
  });
});
