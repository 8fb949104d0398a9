import assert from 'node:assert/strict';
import { it } from 'node:test';
import { dequeueJob, enqueueJob, findJobToken, getJob } from '../src/index.js';
import { describeEachBackend, itMultiConnection } from '@sandfleet/test-helpers/db';
import { countRows, makeSpec } from './fixtures.js';

const Q = 'codeintel';

describeEachBackend('dequeue under concurrency', (ctx) => {
  // On PGlite the five claimers are serialised by its single connection; the test still proves
  // that the claim loop ends with every job taken exactly once.
  it('5 executors claiming in a loop take 50 jobs, each exactly once', async () => {
    const enqueued = new Set<number>();
    for (let i = 0; i < 50; i++) enqueued.add((await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() })).id);

    const claimers = Array.from({ length: 5 }, async (_, n) => {
      const mine: { id: number; token: string }[] = [];
      for (;;) {
        const claimed = await dequeueJob(ctx.db, { queue: Q, executorName: `exec-${n}` });
        if (!claimed) return mine;
        mine.push({ id: claimed.job.id, token: claimed.token });
      }
    });
    const perClaimer = await Promise.all(claimers);
    const all = perClaimer.flat();

    assert.equal(all.length, 50, 'no job claimed twice, none missed');
    assert.deepEqual(new Set(all.map((c) => c.id)), enqueued);
    if (!ctx.profile.singleConnection) {
      assert.ok(perClaimer.filter((mine) => mine.length > 0).length > 1, 'claims were actually concurrent');
    }
    for (const [n, mine] of perClaimer.entries()) {
      for (const { id, token } of mine) {
        const job = await getJob(ctx.db, id);
        assert.equal(job?.workerHostname, `exec-${n}`);
        assert.equal(job?.attempt, 1);
        assert.equal((await findJobToken(ctx.db, token))?.jobId, id);
      }
    }
    assert.equal(await countRows(ctx.db, 'job_tokens'), 50);
  });

  itMultiConnection(ctx, 'a claim skips a job row another connection holds locked instead of waiting', async () => {
    const first = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const second = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const other = await ctx.openAnother();
    try {
      let releaseLock!: () => void;
      const lockReleased = new Promise<void>((resolve) => (releaseLock = resolve));
      let lockTaken!: () => void;
      const lockHeld = new Promise<void>((resolve) => (lockTaken = resolve));
      const holder = other.db.transaction().execute(async (trx) => {
        await trx.selectFrom('jobs').select('id').where('id', '=', first.id).forUpdate().execute();
        lockTaken();
        await lockReleased;
      });
      await lockHeld;
      const claimed = await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-a' });
      assert.equal(claimed?.job.id, second.id, 'the locked first job was skipped');
      releaseLock();
      await holder;
      assert.equal((await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-a' }))?.job.id, first.id);
    } finally {
      await other.close();
    }
  });
});
