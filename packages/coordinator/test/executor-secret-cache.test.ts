import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rotateExecutorSecret } from '@sandfleet/db';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { ExecutorSecretCache } from '../src/executor-api/secret-cache.js';

const HOUR = 3_600_000;

for (const backend of testBackends()) {
  describe(`remembered executor secrets (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { executorSecretCacheMs: HOUR });
    });
    after(async () => t?.close());

    const testAuth = async (secret: string) => (await t.request('GET', '/.executors/test/auth', { headers: { Authorization: `token-executor ${secret}` } })).status;

    it('refuses the old secret at once after a rotation with no grace through this coordinator, although it was remembered', async () => {
      assert.equal(await testAuth(ACCESS_TOKEN), 200);
      const rotated = await t.admin('POST', '/api/executor-secrets/rotate', { grace: '0' });
      assert.equal(rotated.status, 201);
      const { secret } = (await rotated.json()) as { secret: string };
      assert.equal(await testAuth(ACCESS_TOKEN), 401);
      assert.equal(await testAuth(secret), 200);
      assert.equal(await testAuth('never-a-secret'), 401);
    });

    it('ends a grace period on time although the cache would keep it longer', async () => {
      const previous = await rotateExecutorSecret(t.database.db, { configSecret: ACCESS_TOKEN, graceMs: 0 });
      const cache = new ExecutorSecretCache(t.database, ACCESS_TOKEN, HOUR);
      assert.equal(await cache.isAccepted(previous.secret), true);
      // Another coordinator rotates with a 1.5 s grace: this one learns the expiry at its next
      // database check (the TTL) — here its clock jumps past the TTL, then the expiry is honoured.
      const replica = new ExecutorSecretCache(t.database, ACCESS_TOKEN, HOUR);
      await rotateExecutorSecret(t.database.db, { configSecret: ACCESS_TOKEN, graceMs: 1_500 });
      assert.equal(await replica.isAccepted(previous.secret), true, 'within the grace period');
      const deadline = Date.now() + 60_000;
      while ((await replica.isAccepted(previous.secret)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await replica.isAccepted(previous.secret), false, 'refused once the grace period ended, long before the hour-long TTL');
      // `cache` still trusts its earlier answer (no expiry then) until its TTL runs out.
      assert.equal(await cache.isAccepted(previous.secret), true);
    });

    it('does not remember an acceptance whose check began before a rotation cleared the cache', async () => {
      const { secret } = await rotateExecutorSecret(t.database.db, { configSecret: ACCESS_TOKEN, graceMs: 0 });
      const cache = new ExecutorSecretCache(t.database, ACCESS_TOKEN, HOUR);
      const inFlight = cache.isAccepted(secret);
      cache.clear(); // a rotation through this coordinator lands while the check runs
      assert.equal(await inFlight, true);
      await rotateExecutorSecret(t.database.db, { configSecret: ACCESS_TOKEN, graceMs: 0 });
      assert.equal(await cache.isAccepted(secret), false, 'checked again, not taken from the cache');
    });

    it('sees a rotation made elsewhere once its TTL has passed', async () => {
      let now = 1_000_000;
      const { secret } = await rotateExecutorSecret(t.database.db, { configSecret: ACCESS_TOKEN, graceMs: 0 });
      const cache = new ExecutorSecretCache(t.database, ACCESS_TOKEN, 5_000, () => now);
      assert.equal(await cache.isAccepted(secret), true);
      await rotateExecutorSecret(t.database.db, { configSecret: ACCESS_TOKEN, graceMs: 0 });
      now += 4_999;
      assert.equal(await cache.isAccepted(secret), true, 'remembered within the TTL');
      now += 2;
      assert.equal(await cache.isAccepted(secret), false, 'checked again after the TTL: retired');
    });
  });
}
