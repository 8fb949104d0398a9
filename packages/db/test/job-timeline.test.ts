import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import { addLogEntry, dequeueJob, enqueueJob, getJob, markComplete, type JobAttemptRef } from '../src/index.js';
import { describeEachBackend, HANG_TIMEOUT_MS, itStandardServer } from '@sandfleet/test-helpers/db';
import { makeSpec } from './fixtures.js';

const Q = 'batches';

describeEachBackend('final mark announcement', (ctx) => {
  async function running(): Promise<JobAttemptRef> {
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const claimed = await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-a' });
    assert.ok(claimed);
    return { jobId: claimed.job.id, queue: Q, executorName: 'exec-a', attempt: claimed.job.attempt };
  }

  /** Resolves when a log-follower notification for `jobId` arrives. Subscribe before causing it. */
  function followersNotified(jobId: number): Promise<void> {
    return new Promise((resolve) => {
      const off = ctx.database.notifier.subscribeJobLogs((id) => {
        if (id === jobId) {
          off();
          resolve();
        }
      });
    });
  }

  it("returns the attempt's timeline from its first setup, entry and step, and notifies followers", { timeout: HANG_TIMEOUT_MS }, async () => {
    const ref = await running();
    const entry = (key: string, startTime: string, durationMs?: number) =>
      addLogEntry(ctx.db, { ...ref, entry: { key, command: ['x'], startTime, ...(durationMs === undefined ? {} : { exitCode: 0, durationMs }) } });
    await entry('setup.fs.workspace', '2026-11-28T00:00:00Z');
    await entry('setup.bwrap.start', '2026-11-28T00:00:01Z', 40);
    await entry('step.docker.0', '2026-11-28T00:00:02Z');
    await entry('step.docker.1', '2026-11-28T00:00:03Z');
    const notified = followersNotified(ref.jobId);
    const finished = await markComplete(ctx.db, ref);
    await notified;
    assert.equal(finished?.timelineError, undefined);
    assert.deepEqual(
      [finished?.timeline?.sandboxEntry, finished?.timeline?.firstEntryStartTime, finished?.timeline?.firstStepStartTime],
      [{ startTime: '2026-11-28T00:00:01Z', durationMs: 40 }, '2026-11-28T00:00:00Z', '2026-11-28T00:00:02Z'],
    );
  });

  itStandardServer(ctx, 'a timeline read that fails leaves the mark committed, still notifies, and returns the error', async () => {
    const ref = await running();
    const notified = followersNotified(ref.jobId);
    // Another session holds the log table (as a migration would); the announcement's read of it
    // gives up after lock_timeout while the finish, which does not touch that table, goes through.
    const finished = await ctx.db.transaction().execute(async (holder) => {
      await sql`LOCK TABLE execution_log_entries IN ACCESS EXCLUSIVE MODE`.execute(holder);
      return ctx.db.connection().execute(async (conn) => {
        await sql`SET lock_timeout = '100ms'`.execute(conn);
        try {
          return await markComplete(conn, ref);
        } finally {
          await sql`RESET lock_timeout`.execute(conn);
        }
      });
    });
    await notified;
    assert.ok(finished, 'the mark changed the row');
    assert.equal(finished.timeline, undefined);
    assert.match(String(finished.timelineError?.message), /lock timeout/);
    assert.equal((await getJob(ctx.db, ref.jobId))?.state, 'completed');
  });
});
