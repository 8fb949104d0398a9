import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pino from 'pino';
import { dequeueJob, enqueueJob } from '@sandfleet/db';
import { testBackends } from '@sandfleet/test-helpers/db';
import { createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { startResetter } from '../src/background/resetter.js';
import { Metrics } from '../src/metrics.js';
import { QueueCatalog } from '../src/queue-catalog.js';

const EMPTY_SPEC = { repositoryName: '', repositoryDirectory: '', commit: '', fetchTags: false, shallowClone: false, sparseCheckout: null, files: {}, dockerSteps: null, cliSteps: null, redactedValues: null, dockerAuthConfig: null };

for (const backend of testBackends()) {
  describe(`resetter after a coordinator outage (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());

    it('does not reset a job whose heartbeats were impossible while the coordinator was down, until stalledMaxAge has passed since start-up', async () => {
      const db = t.database.db;
      await enqueueJob(db, { queue: 'batches', spec: EMPTY_SPEC });
      const claimed = (await dequeueJob(db, { queue: 'batches', executorName: 'exec-a' }))!;
      // The last heartbeat is from before the outage, far beyond stalledMaxAge.
      await sql`UPDATE jobs SET last_heartbeat_at = now() - interval '1 hour' WHERE id = ${claimed.job.id}`.execute(db);
      const stalledMaxAgeMs = 2_000;
      const config = {
        ...t.config,
        resetterIntervalMs: 50,
        queues: new QueueCatalog(Object.fromEntries(Object.entries(t.config.queues.settings).map(([name, q]) => [name, { ...q, stalledMaxAgeMs }]))),
      };
      const state = async () => (await sql<{ state: string }>`SELECT state FROM jobs WHERE id = ${claimed.job.id}`.execute(db)).rows[0]!.state;
      const startedAt = Date.now();
      const stop = startResetter({ config, database: t.database, metrics: new Metrics(t.database, t.config.queues.names), log: pino({ level: 'silent' }) });
      try {
        // Many resetter ticks run in the first second; none may reset the job.
        await new Promise((r) => setTimeout(r, 1_000));
        if (Date.now() - startedAt < stalledMaxAgeMs) assert.equal(await state(), 'processing');
        // Once executors had stalledMaxAge to heartbeat again, a job still silent is reset as usual.
        for (let i = 0; i < 300 && (await state()) === 'processing'; i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal(await state(), 'queued');
        assert.ok(Date.now() - startedAt >= stalledMaxAgeMs);
      } finally {
        stop();
      }
      // The coordinator is unharmed: its app still answers.
      assert.equal((await t.request('GET', '/healthz')).status, 200);
    });
  });
}
