import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import { cancelJob, dequeueJob, enqueueJob, markErrored, queueSizes, queuesWithWaitingJobs } from '../src/index.js';
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

  it('names the queues holding a queued or errored job, in the order asked, for the multi-queue dequeue', async () => {
    await enqueueJob(ctx.db, { queue: 'w-queued', spec: makeSpec() });
    await enqueueJob(ctx.db, { queue: 'w-errored', spec: makeSpec() });
    const errored = (await dequeueJob(ctx.db, { queue: 'w-errored', executorName: 'e' }))!;
    assert.ok(await markErrored(ctx.db, { jobId: errored.job.id, queue: 'w-errored', executorName: 'e', attempt: errored.job.attempt, errorMessage: 'x', maxRetries: 3 }));
    await enqueueJob(ctx.db, { queue: 'w-processing', spec: makeSpec() });
    await dequeueJob(ctx.db, { queue: 'w-processing', executorName: 'e' });
    const canceled = await enqueueJob(ctx.db, { queue: 'w-canceled', spec: makeSpec() });
    await cancelJob(ctx.db, canceled.id);
    const asked = ['w-processing', 'w-errored', 'w-canceled', "w-'quoted,{odd}", 'w-queued', 'w-empty'];
    assert.deepEqual(await queuesWithWaitingJobs(ctx.db, asked), ['w-errored', 'w-queued']);
    assert.deepEqual(await queuesWithWaitingJobs(ctx.db, []), []);
  });
});
