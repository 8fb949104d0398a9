import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import {
  AdminTokenTooShortError,
  createAdminToken,
  deleteAdminToken,
  listAdminTokens,
  syncEnvAdminToken,
  verifyAdminToken,
} from '@sandfleet/db';
import { createTestDatabase, testBackends } from '@sandfleet/test-helpers/db';
import { ADMIN_TOKEN, SANDFLEET_BIN, createTestApp, startCoordinatorServer, type CoordinatorServer, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { basicEnv, makeTempDir, removeTempDir, spawnProcess } from '@sandfleet/test-helpers';
import { loadConfig, startCoordinator } from '../src/index.js';
import { AdminTokenCache } from '../src/user-api/admin-token-cache.js';

const TOKEN_A = 'env-token-a-0123456789abcdef';
const TOKEN_B = 'env-token-b-0123456789abcdef';

/** `sandfleet <args>` as a client, with `env` only (plus a minimal PATH/HOME). */
async function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const home = makeTempDir('sandfleet-cli-home-');
  try {
    const spawned = spawnProcess(process.execPath, [SANDFLEET_BIN, ...args], basicEnv({ HOME: home, ...env }));
    const code = await spawned.exit;
    return { code, output: spawned.output() };
  } finally {
    removeTempDir(home);
  }
}

for (const backend of testBackends()) {
  describe(`admin tokens (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());

    it('refuses tokens shorter than 20 characters', async () => {
      await assert.rejects(createAdminToken(t.database.db, { description: 'x', token: 'short-token-1234567' }), AdminTokenTooShortError);
      await assert.rejects(syncEnvAdminToken(t.database.db, 'short'), AdminTokenTooShortError);
      assert.ok(!(await listAdminTokens(t.database.db)).some((r) => r.description === 'x'));
    });

    it('treats the env token as authoritative: a changed one revokes the previous env token, not the others', async () => {
      const db = t.database.db;
      const { token: cliToken } = await createAdminToken(db, { description: 'ci', source: 'cli' });
      await syncEnvAdminToken(db, TOKEN_A);
      await syncEnvAdminToken(db, TOKEN_A); // idempotent at every start
      assert.equal((await listAdminTokens(db)).filter((r) => r.source === 'env').length, 1);
      assert.deepEqual(await syncEnvAdminToken(db, TOKEN_B), { revoked: 1 });
      assert.equal(await verifyAdminToken(db, TOKEN_A), undefined);
      assert.equal((await verifyAdminToken(db, TOKEN_B))?.source, 'env');
      assert.equal((await verifyAdminToken(db, cliToken))?.source, 'cli');
    });

    it('lists, creates and revokes tokens over the API; the list never holds a secret and notes the last use', async () => {
      const created = await t.admin('POST', '/api/admin-tokens', { description: 'deploy bot' });
      assert.equal(created.status, 201);
      const { token, adminToken } = (await created.json()) as { token: string; adminToken: { id: number; source: string; lastUsedAt: string | null } };
      assert.ok(token.length >= 20);
      assert.equal(adminToken.source, 'cli');
      assert.equal(adminToken.lastUsedAt, null);
      const asNew = await t.request('GET', '/api/queues', { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(asNew.status, 200);

      const listed = await t.admin('GET', '/api/admin-tokens');
      const text = await listed.text();
      assert.ok(!text.includes(token) && !text.includes(ADMIN_TOKEN), 'no secret in the list');
      const row = (JSON.parse(text).adminTokens as { id: number; description: string; lastUsedAt: string | null }[]).find((r) => r.id === adminToken.id)!;
      assert.equal(row.description, 'deploy bot');
      assert.ok(row.lastUsedAt, 'the use above was recorded');

      assert.equal((await t.admin('DELETE', `/api/admin-tokens/${adminToken.id}`)).status, 204);
      assert.equal((await t.request('GET', '/api/queues', { headers: { Authorization: `Bearer ${token}` } })).status, 401);
      assert.equal((await t.admin('DELETE', `/api/admin-tokens/${adminToken.id}`)).status, 404);
      assert.equal((await t.request('GET', '/healthz')).status, 200);
    });

    it('remembers an accepted token for its TTL only: a revocation made elsewhere is seen once the TTL has passed', async () => {
      let now = 1_000_000;
      const { token, record } = await createAdminToken(t.database.db, { description: 'replica' });
      const cache = new AdminTokenCache(t.database, 5_000, () => now);
      assert.equal(await cache.isAccepted(token), true);
      assert.equal(await deleteAdminToken(t.database.db, record.id), true, 'revoked without this cache knowing');
      now += 4_999;
      assert.equal(await cache.isAccepted(token), true, 'remembered within the TTL');
      now += 2;
      assert.equal(await cache.isAccepted(token), false, 'checked again after the TTL: revoked');
      assert.equal(await cache.isAccepted('never-an-admin-token-0123456789'), false);
    });

    it('does not remember an acceptance whose lookup began before the cache was cleared', async () => {
      const { token, record } = await createAdminToken(t.database.db, { description: 'in flight' });
      const cache = new AdminTokenCache(t.database, 3_600_000);
      const inFlight = cache.isAccepted(token);
      cache.clear(); // a revocation lands while the lookup runs
      assert.equal(await inFlight, true);
      await deleteAdminToken(t.database.db, record.id);
      assert.equal(await cache.isAccepted(token), false, 'looked up again, not taken from the cache');
    });

    it('revokes the previous SANDFLEET_ADMIN_TOKEN when the coordinator restarts with another one', async () => {
      const testDb = await createTestDatabase(backend);
      const dataDir = makeTempDir('sandfleet-admin-rotate-');
      const log = pino({ level: 'silent' });
      const start = (token: string) => startCoordinator(loadConfig({ port: 0, dataDir }, { ...testDb.env, SANDFLEET_ADMIN_TOKEN: token }), log);
      const status = async (url: string, token: string) => (await fetch(`${url}/api/queues`, { headers: { Authorization: `Bearer ${token}` } })).status;
      try {
        const first = await start(TOKEN_A);
        try {
          assert.equal(await status(first.url, TOKEN_A), 200);
        } finally {
          await first.close();
        }
        const second = await start(TOKEN_B);
        try {
          assert.equal(await status(second.url, TOKEN_B), 200);
          assert.equal(await status(second.url, TOKEN_A), 401, 'the old env token no longer works');
        } finally {
          await second.close();
        }
      } finally {
        await testDb.drop();
        removeTempDir(dataDir);
      }
    });
  });
}

describe('admin tokens: start-up and command line', () => {
  let server: CoordinatorServer;
  let dir: string;
  before(async () => {
    server = await startCoordinatorServer(testBackends()[0]!);
    dir = makeTempDir('sandfleet-admin-cli-');
  });
  after(async () => {
    await server?.close();
    removeTempDir(dir);
  });

  it('refuses to start with a SANDFLEET_ADMIN_TOKEN shorter than 20 characters (exit 2)', async () => {
    const { code, output } = await cli(['serve', '--port', '0', '--data-dir', path.join(dir, 'data')], { SANDFLEET_ADMIN_TOKEN: 'too-short' });
    assert.equal(code, 2, output);
    assert.match(output, /SANDFLEET_ADMIN_TOKEN must be at least 20 characters, got 9/);
    assert.ok(!output.includes('too-short'), 'the token itself is not printed');
  });

  it('creates, lists and revokes with the token from SANDFLEET_ADMIN_TOKEN or --token-file, and refuses --token', async () => {
    const base = { SANDFLEET_URL: server.url };
    const created = await cli(['admin-tokens', 'create', '--name', 'ci runner'], { ...base, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN });
    assert.equal(created.code, 0, created.output);
    const token = created.output.match(/^(sfa_[0-9a-f]{64})$/m)?.[1];
    assert.ok(token, created.output);

    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const listed = await cli(['--token-file', tokenFile, 'admin-tokens', 'list'], base);
    assert.equal(listed.code, 0, listed.output);
    assert.match(listed.output, /ID\tNAME\tSOURCE\tCREATED\tLAST USED/);
    const row = listed.output.split('\n').find((l) => l.includes('ci runner'))!;
    assert.match(row, /^\d+\tci runner\tcli\t\S+\t\S+$/);
    assert.ok(!listed.output.includes(token) && !listed.output.includes(ADMIN_TOKEN), 'list never shows a token');

    const viaFlag = await cli(['--token', ADMIN_TOKEN, 'admin-tokens', 'list'], base);
    assert.equal(viaFlag.code, 1);
    assert.match(viaFlag.output, /--token is no longer supported.*SANDFLEET_ADMIN_TOKEN.*--token-file/);

    const id = row.split('\t')[0]!;
    const revoked = await cli(['admin-tokens', 'revoke', id], { ...base, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN });
    assert.equal(revoked.code, 0, revoked.output);
    const refused = await cli(['--token-file', tokenFile, 'admin-tokens', 'list'], base);
    assert.equal(refused.code, 1);
    assert.match(refused.output, /invalid admin token/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});
