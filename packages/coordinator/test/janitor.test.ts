import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pino from 'pino';
import { dequeueJob, enqueueJob, executorExists, findJobToken, upsertExecutorHeartbeat } from '@sandfleet/db';
import { testBackends } from '@sandfleet/test-helpers/db';
import { createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { runJanitor, startJanitor } from '../src/background/janitor.js';
import { ConfigError, loadConfig } from '../src/config.js';

for (const backend of testBackends()) {
  describe(`janitor (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());
    const log = pino({ level: 'silent' });

    it('prunes executors not seen within the retention and tokens of jobs no longer processing', async () => {
      const db = t.database.db;
      await upsertExecutorHeartbeat(db, { hostname: 'gone', queueName: 'batches' });
      await upsertExecutorHeartbeat(db, { hostname: 'recent', queueName: 'batches' });
      await sql`UPDATE executor_heartbeats SET last_seen_at = now() - interval '2 hours' WHERE hostname = 'gone'`.execute(db);
      await enqueueJob(db, { queue: 'batches', spec: { repositoryName: '', repositoryDirectory: '', commit: '', fetchTags: false, shallowClone: false, sparseCheckout: null, files: {}, dockerSteps: null, cliSteps: null, redactedValues: null, dockerAuthConfig: null } });
      const claimed = (await dequeueJob(db, { queue: 'batches', executorName: 'recent' }))!;
      await sql`UPDATE jobs SET state = 'failed', finished_at = now() WHERE id = ${claimed.job.id}`.execute(db);

      const config = { executorRetentionMs: 3_600_000, janitorIntervalMs: 20 };
      assert.deepEqual(await runJanitor({ config, database: t.database, log }), { executors: 1, jobTokens: 1, uiSessions: 0, executorSecrets: 0 });
      assert.equal(await executorExists(db, 'gone'), false);
      assert.equal(await executorExists(db, 'recent'), true);
      assert.equal(await findJobToken(db, claimed.token), undefined);

      // Started, it runs on its interval.
      await sql`UPDATE executor_heartbeats SET last_seen_at = now() - interval '2 hours' WHERE hostname = 'recent'`.execute(db);
      const stop = startJanitor({ config, database: t.database, log });
      try {
        for (let i = 0; i < 200 && (await executorExists(db, 'recent')); i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(await executorExists(db, 'recent'), false);
      } finally {
        stop();
      }
    });
  });
}

describe('janitor configuration', () => {
  it('reads SANDFLEET_EXECUTOR_RETENTION in the duration grammar, default 7 days', () => {
    assert.equal(loadConfig({}, {}).executorRetentionMs, 7 * 24 * 3_600_000);
    assert.equal(loadConfig({}, { SANDFLEET_EXECUTOR_RETENTION: '48h' }).executorRetentionMs, 48 * 3_600_000);
    assert.throws(() => loadConfig({}, { SANDFLEET_EXECUTOR_RETENTION: 'a week' }), ConfigError);
  });
});
