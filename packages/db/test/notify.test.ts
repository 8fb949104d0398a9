import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import { dequeueJob, enqueueJob, enqueueJobs, resetStalled, type Notifier } from '../src/index.js';
import { describeEachBackend, HANG_TIMEOUT_MS, itStandardServer } from '@sandfleet/test-helpers/db';
import { backdateHeartbeat, makeSpec } from './fixtures.js';

/** Resolves with the first notification for `queue`. Subscribe before causing it. */
function nextNotification(notifier: Notifier, queue: string): Promise<string> {
  return new Promise((resolve) => {
    const off = notifier.subscribe((q) => {
      if (q === queue) {
        off();
        resolve(q);
      }
    });
  });
}

describeEachBackend('notifier', (ctx) => {
  it('delivers the queue name of an enqueued job to subscribers', { timeout: HANG_TIMEOUT_MS }, async () => {
    const received = nextNotification(ctx.database.notifier, 'codeintel');
    await enqueueJob(ctx.db, { queue: 'codeintel', spec: makeSpec() });
    assert.equal(await received, 'codeintel');
  });

  it('notifies a batch once per queue, not once per job', { timeout: HANG_TIMEOUT_MS }, async () => {
    const seen: string[] = [];
    const off = ctx.database.notifier.subscribe((q) => seen.push(q));
    try {
      const job = (queue: string) => ({ queue, spec: makeSpec() });
      await enqueueJobs(ctx.db, [job('batch-n1'), job('batch-n2'), job('batch-n1'), job('batch-n1'), job('batch-n2')]);
      // Notifications arrive in commit order: once this one is in, the batch's are too.
      const sentinel = nextNotification(ctx.database.notifier, 'batch-n-end');
      await enqueueJob(ctx.db, job('batch-n-end'));
      await sentinel;
    } finally {
      off();
    }
    assert.deepEqual(seen.filter((q) => q.startsWith('batch-n')).sort(), ['batch-n-end', 'batch-n1', 'batch-n2']);
  });

  it('stops delivering to an unsubscribed listener and survives a throwing one', { timeout: HANG_TIMEOUT_MS }, async () => {
    const removed: string[] = [];
    const off = ctx.database.notifier.subscribe((q) => removed.push(q));
    const offThrowing = ctx.database.notifier.subscribe(() => {
      throw new Error('listener bug');
    });
    off();
    const seen: string[] = [];
    const both = new Promise<void>((resolve) => {
      const offSeen = ctx.database.notifier.subscribe((q) => {
        seen.push(q);
        if (seen.length === 2) {
          offSeen();
          resolve();
        }
      });
    });
    await enqueueJob(ctx.db, { queue: 'a', spec: makeSpec() });
    await enqueueJob(ctx.db, { queue: 'b', spec: makeSpec() });
    await both;
    offThrowing();
    assert.deepEqual(seen, ['a', 'b']);
    assert.deepEqual(removed, [], 'listeners are called in one pass, so it would have seen both by now');
  });

  it('notifies when the resetter puts a job back in the queue', { timeout: HANG_TIMEOUT_MS }, async () => {
    const job = await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
    await dequeueJob(ctx.db, { queue: 'batches', executorName: 'e' });
    await backdateHeartbeat(ctx.db, job.id, 60_000);
    const received = nextNotification(ctx.database.notifier, 'batches');
    assert.deepEqual((await resetStalled(ctx.db, { queue: 'batches', stalledMaxAgeMs: 25_000, maxResets: 3 })).reset, [job.id]);
    assert.equal(await received, 'batches');
  });

  itStandardServer(ctx, 'reconnects its LISTEN connection after the server drops it', async () => {
    const other = await ctx.openAnother();
    try {
      // The second Database's notifier is the one killed; its own enqueues tell whether it listens again.
      const killed = await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity
                WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()
                  AND pg_terminate_backend(pid)`.execute(ctx.db);
      assert.ok(killed.rows.length >= 2, 'both Databases had a LISTEN connection to kill');
      // Poll the state (listening again) rather than sleep for a guessed reconnect time.
      for (let round = 0; ; round++) {
        const received = Promise.race([
          nextNotification(other.notifier, `probe-${round}`).then(() => true),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 200)),
        ]);
        await enqueueJob(ctx.db, { queue: `probe-${round}`, spec: makeSpec() });
        if (await received) break;
      }
      const listeners = await sql<{ n: number }>`SELECT count(*)::integer AS n FROM pg_stat_activity
                WHERE datname = current_database() AND query ILIKE 'LISTEN%'`.execute(ctx.db);
      assert.ok(listeners.rows[0]!.n >= 1);
    } finally {
      await other.close();
    }
  });
});
