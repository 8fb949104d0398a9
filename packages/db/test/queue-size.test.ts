import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import { cancelJob, dequeueJob, enqueueJob, queueSizes } from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { makeSpec } from './fixtures.js';

describeEachBackend('queue sizes for autoscaling', (ctx) => {
  const backdateQueued = (id: number, seconds: number) => sql`UPDATE jobs SET queued_at = now() - ${seconds}::int * interval '1 second' WHERE id = ${id}`.execute(ctx.db);

  it('counts queued, errored and processing jobs; the age is of the oldest job still waiting', async () => {
    const running = await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
    const claimed = await dequeueJob(ctx.db, { queue: 'batches', executorName: 'e' });
    assert.equal(claimed?.job.id, running.id);
    await backdateQueued(running.id, 600);
    const waiting = await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
    await backdateQueued(waiting.id, 120);
    const canceled = await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
    await backdateQueued(canceled.id, 3_600);
    await cancelJob(ctx.db, canceled.id);
    // Held back until later: counted, but not yet waiting.
    await enqueueJob(ctx.db, { queue: 'codeintel', spec: makeSpec(), processAfter: new Date(Date.now() + 3_600_000) });

    const sizes = await queueSizes(ctx.db, ['batches', 'codeintel', 'empty']);
    assert.equal(sizes.batches!.size, 2);
    assert.ok(sizes.batches!.oldestQueuedAgeSeconds >= 120 && sizes.batches!.oldestQueuedAgeSeconds < 600, String(sizes.batches!.oldestQueuedAgeSeconds));
    assert.deepEqual(sizes.codeintel, { size: 1, oldestQueuedAgeSeconds: 0 });
    assert.deepEqual(sizes.empty, { size: 0, oldestQueuedAgeSeconds: 0 });
  });
});
