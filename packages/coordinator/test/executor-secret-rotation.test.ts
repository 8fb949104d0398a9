import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pino from 'pino';
import { basicEnv, makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, ADMIN_TOKEN, SANDFLEET_BIN, createTestApp, startCoordinatorServer, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { createApp, JobWaiter, Metrics } from '../src/index.js';

const auth = (secret: string) => ({ Authorization: `token-executor ${secret}` });

for (const backend of testBackends()) {
  describe(`executor secret rotation (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      // endGrace() moves expiries by editing the database, which remembered acceptances cannot
      // see: check every request here (the cache has tests of its own below).
      t = await createTestApp(backend, { executorSecretCacheMs: 0 });
    });
    after(async () => t?.close());

    /** The grace period ends now: every retiring secret's expiry moves into the past. */
    const endGrace = () => sql`UPDATE executor_secrets SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL`.execute(t.database.db);
    const testAuth = async (app: { request: TestApp['app']['request'] }, secret: string) => (await app.request('/.executors/test/auth', { headers: auth(secret) })).status;

    it('keeps the old secret working for the grace period, then refuses it on shared-secret and pre-token job routes; a restart changes nothing', async () => {
      const rotated = await t.admin('POST', '/api/executor-secrets/rotate', { grace: '1h' });
      assert.equal(rotated.status, 201);
      const { secret, fingerprint, previousAcceptedUntil } = (await rotated.json()) as { secret: string; fingerprint: string; previousAcceptedUntil: string };
      assert.match(secret, /^sfe_[0-9a-f]{64}$/);
      assert.ok(new Date(previousAcceptedUntil).getTime() > Date.now() + 30 * 60_000);
      assert.equal(await testAuth(t.app, ACCESS_TOKEN), 200, 'old secret within the grace period');
      assert.equal(await testAuth(t.app, secret), 200);

      const listed = (await (await t.admin('GET', '/api/executor-secrets')).json()) as { executorSecrets: Array<{ fingerprint: string; source: string; accepted: boolean }> };
      assert.deepEqual(listed.executorSecrets.map((s) => [s.source, s.accepted]), [['rotated', true], ['config', true]]);
      assert.equal(listed.executorSecrets[0]!.fingerprint, fingerprint);
      assert.ok(!JSON.stringify(listed).includes(secret) && !JSON.stringify(listed).includes(ACCESS_TOKEN), 'never a secret');

      await endGrace();
      assert.equal(await testAuth(t.app, ACCESS_TOKEN), 401, 'refused after the grace period');
      const dequeue = await t.request('POST', '/.executors/queue/batches/dequeue', { body: { executorName: 'old', version: '5.3.0' }, headers: auth(ACCESS_TOKEN) });
      assert.equal(dequeue.status, 401);
      // A pre-token executor names the job in the body and authenticates job routes with the shared secret too.
      const jobRoute = await t.request('POST', '/.executors/queue/batches/markComplete', { body: { executorName: 'old', jobId: 1 }, headers: auth(ACCESS_TOKEN) });
      assert.equal(jobRoute.status, 403);
      assert.equal(await testAuth(t.app, secret), 200);

      // A restart: a new app on the same database and the same config.
      const restarted = createApp({ config: t.config, database: t.database, waiter: new JobWaiter(t.database.notifier), metrics: new Metrics(t.database, t.config.queues.names), log: pino({ level: 'silent' }) });
      assert.equal(await testAuth(restarted, ACCESS_TOKEN), 401, 'the retired config secret stays retired');
      assert.equal(await testAuth(restarted, secret), 200);
    });

    it('refuses a malformed or too long grace period with 400 and says why', async () => {
      for (const [grace, message] of [
        ['1500', /unit/],
        ['200h', /at most 168h/],
        ['soon', /grace/],
      ] as const) {
        const res = await t.admin('POST', '/api/executor-secrets/rotate', { grace });
        assert.equal(res.status, 400, grace);
        assert.match(((await res.json()) as { error: string }).error, message);
      }
    });
  });
}

describe('sandfleet executor-secret rotate', () => {
  const backend = testBackends()[0]!;
  it('--out writes the new secret to a 0600 file and prints none; --grace 0 retires the old one at once', async () => {
    const coordinator = await startCoordinatorServer(backend);
    const dir = makeTempDir('sandfleet-rotate-');
    try {
      const out = path.join(dir, 'executor-secret');
      fs.writeFileSync(out, 'previous content\n', { mode: 0o644 });
      // Asynchronously: the coordinator answering the CLI runs in this process.
      const cli = async (args: string[]) => {
        const child = spawn(process.execPath, [SANDFLEET_BIN, ...args], { env: basicEnv({ HOME: dir, SANDFLEET_URL: coordinator.url, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN }) });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c) => (stdout += c));
        child.stderr.on('data', (c) => (stderr += c));
        const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
        return { status, stdout, stderr };
      };
      const result = await cli(['executor-secret', 'rotate', '--grace', '0', '--out', out]);
      assert.equal(result.status, 0, result.stderr);
      const secret = fs.readFileSync(out, 'utf8').trim();
      assert.match(secret, /^sfe_[0-9a-f]{64}$/);
      assert.equal(fs.statSync(out).mode & 0o777, 0o600);
      assert.ok(!result.stdout.includes(secret) && !result.stderr.includes(secret), 'not printed');
      assert.deepEqual(fs.readdirSync(dir), ['executor-secret'], 'no temporary file left');
      const status = async (s: string) => (await fetch(`${coordinator.url}/.executors/test/auth`, { headers: auth(s) })).status;
      assert.equal(await status(ACCESS_TOKEN), 401);
      assert.equal(await status(secret), 200);

      const listed = await cli(['executor-secret', 'list']);
      assert.equal(listed.status, 0, listed.stderr);
      assert.match(listed.stdout, /\trotated\t.*\tcurrent/);
      assert.match(listed.stdout, /\tconfig\t-\t\d{4}-/);

      const printed = await cli(['executor-secret', 'rotate']);
      assert.equal(printed.status, 0, printed.stderr);
      assert.match(printed.stdout.trim(), /^sfe_[0-9a-f]{64}$/);
      assert.equal(await status(secret), 200, 'the previous one is in its default grace period (1h)');
      const refused = await cli(['executor-secret', 'rotate', '--grace', '10']);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /400 grace: .*unit/);
    } finally {
      removeTempDir(dir);
      await coordinator.close();
    }
  });
});
