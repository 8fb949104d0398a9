import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  cancelJob,
  CANCELED_REASON,
  dequeueJob,
  enqueueJob,
  getJob,
  listJobAttempts,
  jobStateCounts,
  listJobs,
  listRetriesOf,
  markComplete,
  markErrored,
  markFailed,
  processingJobsByExecutor,
  resetStalled,
  retryJob,
  type JobAttemptRef,
} from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { backdateHeartbeat, makeSpec } from './fixtures.js';

const Q = 'batches';
const RESET = { queue: Q, stalledMaxAgeMs: 25_000, maxResets: 1 };

describeEachBackend('job attempts and retries', (ctx) => {
  async function claim(executorName: string) {
    const claimed = await dequeueJob(ctx.db, { queue: Q, executorName });
    assert.ok(claimed, 'expected a job to be claimed');
    const ref: JobAttemptRef = { jobId: claimed.job.id, queue: Q, executorName, attempt: claimed.job.attempt };
    return { ...claimed, ref };
  }

  it('records each attempt: executor, start, end, outcome, and the reset reason of a stalled one', async () => {
    const job = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const first = await claim('exec-a');
    assert.deepEqual(
      (await listJobAttempts(ctx.db, job.id)).map((a) => [a.attempt, a.executorHostname, a.finishedAt, a.outcome]),
      [[1, 'exec-a', null, null]],
    );
    await backdateHeartbeat(ctx.db, job.id, 60_000);
    assert.deepEqual((await resetStalled(ctx.db, RESET)).reset, [job.id]);
    const second = await claim('exec-b');
    assert.equal(second.job.attempt, 2);
    // The first executor's late mark is fenced off and does not touch either attempt's record.
    assert.equal(await markComplete(ctx.db, first.ref), undefined);
    assert.ok(await markComplete(ctx.db, second.ref));

    const attempts = await listJobAttempts(ctx.db, job.id);
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.executorHostname, a.outcome, a.resetReason]),
      [
        [1, 'exec-a', 'reset', 'no heartbeat for over 25s: returned to the queue'],
        [2, 'exec-b', 'completed', null],
      ],
    );
    const final = (await getJob(ctx.db, job.id))!;
    assert.ok(attempts.every((a) => a.finishedAt && a.finishedAt >= a.startedAt));
    assert.deepEqual(attempts[1]!.finishedAt, final.finishedAt);
    assert.deepEqual(attempts[1]!.startedAt, final.startedAt);
  });

  it('records errored, failed and canceled outcomes, and a stalled job failed after its resets', async () => {
    const errored = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    assert.ok(await markErrored(ctx.db, { ...(await claim('e')).ref, errorMessage: 'x', maxRetries: 2 }));
    const failed = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    assert.ok(await markFailed(ctx.db, { ...(await claim('e')).ref, errorMessage: 'x' }));
    const canceled = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const running = await claim('e');
    assert.equal(await cancelJob(ctx.db, canceled.id), 'processing');
    assert.ok(await markFailed(ctx.db, { ...running.ref, errorMessage: 'killed' }));
    const outcome = async (id: number) => (await listJobAttempts(ctx.db, id)).map((a) => [a.outcome, a.resetReason]);
    assert.deepEqual(await outcome(errored.id), [['errored', null]]);
    assert.deepEqual(await outcome(failed.id), [['failed', null]]);
    assert.deepEqual(await outcome(canceled.id), [['canceled', CANCELED_REASON]]);

    const stalled = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), priority: 9 });
    for (let i = 0; i < 2; i++) {
      await claim(`s${i}`);
      await backdateHeartbeat(ctx.db, stalled.id, 60_000);
      await resetStalled(ctx.db, RESET);
    }
    assert.equal((await getJob(ctx.db, stalled.id))?.state, 'failed');
    assert.deepEqual(await outcome(stalled.id), [
      ['reset', 'no heartbeat for over 25s: returned to the queue'],
      ['failed', 'no heartbeat for over 25s, after 1 reset(s): failed'],
    ]);
  });

  it('retries a finished job as a new queued job with the same queue, payload, repository and priority', async () => {
    const spec = makeSpec({ repositoryName: 'github.com/a/retry' });
    const job = await enqueueJob(ctx.db, { queue: Q, spec, priority: 3 });
    assert.equal(await retryJob(ctx.db, job.id), undefined, 'a queued job is not retried');
    const claimed = await claim('exec-a');
    assert.equal(await retryJob(ctx.db, job.id), undefined, 'a processing job is not retried');
    assert.ok(await markFailed(ctx.db, { ...claimed.ref, errorMessage: 'boom' }));
    const retry = await retryJob(ctx.db, job.id);
    assert.ok(retry);
    assert.notEqual(retry.id, job.id);
    assert.equal(retry.state, 'queued');
    assert.equal(retry.retryOf, job.id);
    assert.equal(retry.queue, Q);
    assert.equal(retry.priority, 3);
    assert.equal(retry.repositoryName, 'github.com/a/retry');
    assert.equal(retry.attempt, 0);
    assert.deepEqual(retry.spec, spec);
    assert.equal((await getJob(ctx.db, job.id))?.state, 'failed', 'the original is left as it was');
    assert.deepEqual((await listRetriesOf(ctx.db, job.id)).map((j) => j.id), [retry.id]);
    assert.equal(await retryJob(ctx.db, 987_654), undefined);
    // The retry runs like any job.
    const next = await claim('exec-b');
    assert.equal(next.job.id, retry.id);
  });

  it('filters the job list by repository, and lists processing jobs per executor', async () => {
    const a1 = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec({ repositoryName: 'repo/a' }) });
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec({ repositoryName: 'repo/b' }) });
    const a2 = await enqueueJob(ctx.db, { queue: 'codeintel', spec: makeSpec({ repositoryName: 'repo/a' }) });
    assert.deepEqual((await listJobs(ctx.db, { repositoryName: 'repo/a', limit: 10 })).map((j) => j.id), [a2.id, a1.id]);
    assert.deepEqual((await listJobs(ctx.db, { repositoryName: 'repo/a', queue: Q, limit: 10 })).map((j) => j.id), [a1.id]);
    assert.deepEqual((await listJobs(ctx.db, { repositoryName: 'repo/a', limit: 1, beforeId: a2.id })).map((j) => j.id), [a1.id]);
    assert.deepEqual(await listJobs(ctx.db, { repositoryName: 'repo', limit: 10 }), [], 'exact match, not a prefix');

    assert.equal((await jobStateCounts(ctx.db, { repositoryName: 'repo/a' })).queued, 2);
    assert.equal((await jobStateCounts(ctx.db, { repositoryName: 'repo/a', queue: Q })).queued, 1);
    assert.equal((await jobStateCounts(ctx.db, { repositoryName: 'repo/none' })).queued, 0);
    const held = await claim('exec-x');
    const running = await processingJobsByExecutor(ctx.db, ['exec-x', 'exec-y']);
    assert.deepEqual(running.get('exec-x')?.map((j) => j.id), [held.job.id]);
    assert.equal(running.get('exec-y'), undefined);
    assert.ok(await markComplete(ctx.db, held.ref));
    assert.equal((await processingJobsByExecutor(ctx.db, ['exec-x'])).get('exec-x'), undefined);
  });
});
