import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import { dequeueJob, enqueueJob, queueWaitStats } from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { makeSpec } from './fixtures.js';

const HOUR = 3_600_000;

describeEachBackend('queue wait statistics', (ctx) => {
  it('reports the oldest queued age and pickup latency percentiles of the last hour, per queue', async () => {
    assert.deepEqual(await queueWaitStats(ctx.db, HOUR), {});
    // Five jobs picked up after 10..50 s of waiting, one picked up two hours ago (outside the window), one still queued.
    for (const waitedSeconds of [10, 20, 30, 40, 50]) {
      const job = await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
      await dequeueJob(ctx.db, { queue: 'batches', executorName: 'e1' });
      await sql`UPDATE jobs SET queued_at = started_at - ${waitedSeconds}::integer * interval '1 second' WHERE id = ${job.id}`.execute(ctx.db);
    }
    const old = await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
    await dequeueJob(ctx.db, { queue: 'batches', executorName: 'e1' });
    await sql`UPDATE jobs SET started_at = now() - interval '2 hours', queued_at = now() - interval '3 hours' WHERE id = ${old.id}`.execute(ctx.db);
    const waiting = await enqueueJob(ctx.db, { queue: 'codeintel', spec: makeSpec() });
    await sql`UPDATE jobs SET queued_at = now() - interval '90 seconds' WHERE id = ${waiting.id}`.execute(ctx.db);

    const stats = await queueWaitStats(ctx.db, HOUR);
    const batches = stats.batches!;
    assert.equal(batches.pickedUp, 5);
    assert.equal(batches.oldestQueuedMs, null);
    assert.ok(Math.abs(batches.pickupP50Ms! - 30_000) < 1, `p50 ${batches.pickupP50Ms}`);
    assert.ok(Math.abs(batches.pickupP95Ms! - 48_000) < 1, `p95 ${batches.pickupP95Ms}`);
    const codeintel = stats.codeintel!;
    assert.equal(codeintel.pickedUp, 0);
    assert.equal(codeintel.pickupP50Ms, null);
    assert.ok(codeintel.oldestQueuedMs! >= 90_000 && codeintel.oldestQueuedMs! < 10 * 60_000, `oldest ${codeintel.oldestQueuedMs}`);
  });
});
