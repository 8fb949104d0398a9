import assert from 'node:assert/strict';
import { it } from 'node:test';
import { dequeueJobs, enqueueJob, findJobToken, getJob, listJobAttempts, markComplete, resetStalled, type Database, type DequeuedJob } from '../src/index.js';
import { describeEachBackend, itMultiConnection } from '@sandfleet/test-helpers/db';
import { backdateHeartbeat, countRows, makeSpec } from './fixtures.js';

const Q = 'batches';

describeEachBackend('multi-job dequeue', (ctx) => {
  it('claims up to maxJobs in priority order, each with its own attempt and token', async () => {
    const low = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const high = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), priority: 5 });
    const third = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    await enqueueJob(ctx.db, { queue: 'other', spec: makeSpec() });

    const first = await dequeueJobs(ctx.db, { queue: Q, executorName: 'exec-a', maxJobs: 2 });
    assert.deepEqual(first.map((c) => c.job.id), [high.id, low.id]);
    assert.equal(new Set(first.map((c) => c.token)).size, 2, 'one token per job');
    for (const { job, token } of first) {
      assert.equal(job.state, 'processing');
      assert.equal(job.attempt, 1);
      assert.equal(job.workerHostname, 'exec-a');
      assert.deepEqual(await findJobToken(ctx.db, token), { jobId: job.id, attempt: 1, queue: Q, repositoryName: job.repositoryName });
      assert.equal((await listJobAttempts(ctx.db, job.id)).length, 1);
    }
    const rest = await dequeueJobs(ctx.db, { queue: Q, executorName: 'exec-b', maxJobs: 5 });
    assert.deepEqual(rest.map((c) => c.job.id), [third.id], 'fewer than asked when fewer are queued');
    assert.deepEqual(await dequeueJobs(ctx.db, { queue: Q, executorName: 'exec-b', maxJobs: 5 }), []);
  });

  it('a job reset after a multi-job dequeue is fenced against its old attempt', async () => {
    const job = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const [old] = await dequeueJobs(ctx.db, { queue: Q, executorName: 'exec-a', maxJobs: 3 });
    await backdateHeartbeat(ctx.db, job.id, 60_000);
    assert.deepEqual((await resetStalled(ctx.db, { queue: Q, stalledMaxAgeMs: 25_000, maxResets: 3 })).reset, [job.id]);
    assert.equal(await findJobToken(ctx.db, old!.token), undefined, 'the old token is revoked');
    const [again] = await dequeueJobs(ctx.db, { queue: Q, executorName: 'exec-a', maxJobs: 3 });
    assert.equal(again?.job.attempt, 2);
    assert.equal(await markComplete(ctx.db, { jobId: job.id, queue: Q, executorName: 'exec-a', attempt: 1 }), undefined);
    assert.ok(await markComplete(ctx.db, { jobId: job.id, queue: Q, executorName: 'exec-a', attempt: 2 }));
  });

  itMultiConnection(ctx, 'concurrent multi-job dequeuers on their own connections never share a job', async () => {
    const total = 150;
    const enqueued = new Set<number>();
    for (let i = 0; i < total; i++) enqueued.add((await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() })).id);
    const databases: Database[] = [];
    try {
      for (let n = 0; n < 6; n++) databases.push(await ctx.openAnother());
      const perClaimer = await Promise.all(
        databases.map(async (database, n) => {
          const mine: DequeuedJob[] = [];
          for (let round = 0; ; round++) {
            const claimed = await dequeueJobs(database.db, { queue: Q, executorName: `exec-${n}`, maxJobs: 1 + ((n + round) % 5) });
            if (claimed.length === 0) return mine;
            mine.push(...claimed);
          }
        }),
      );
      const all = perClaimer.flat();
      assert.equal(all.length, total, 'every job claimed once: none twice, none missed');
      assert.deepEqual(new Set(all.map((c) => c.job.id)), enqueued);
      assert.ok(perClaimer.filter((mine) => mine.length > 0).length > 1, 'claims were actually concurrent');
      assert.equal(await countRows(ctx.db, 'job_tokens'), total);
      for (const [n, mine] of perClaimer.entries()) {
        const other = `exec-${(n + 1) % databases.length}`;
        for (const { job, token } of mine) {
          assert.equal((await getJob(ctx.db, job.id))?.workerHostname, `exec-${n}`);
          assert.equal((await findJobToken(ctx.db, token))?.jobId, job.id);
          assert.equal(await markComplete(ctx.db, { jobId: job.id, queue: Q, executorName: other, attempt: 1 }), undefined, 'another executor cannot finish it');
        }
      }
      const owned = perClaimer.flatMap((mine, n) => mine.map((c) => ({ id: c.job.id, executorName: `exec-${n}` })));
      for (const { id, executorName } of owned) assert.ok(await markComplete(ctx.db, { jobId: id, queue: Q, executorName, attempt: 1 }));
      assert.equal(await countRows(ctx.db, 'job_tokens'), 0);
    } finally {
      for (const database of databases) await database.close();
    }
  });
});
