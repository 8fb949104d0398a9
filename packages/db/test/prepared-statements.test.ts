import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { dequeueJobs, enqueueJob, findJobTokenOfExecutor, markComplete } from '../src/index.js';
import { describeEachBackend, itStandardServer } from '@sandfleet/test-helpers/db';
import { makeSpec } from './fixtures.js';

const Q = 'batches';

describeEachBackend('prepared statements', (ctx) => {
  itStandardServer(ctx, 'the dequeue, the final mark, its announcement and the token lookup are prepared once per connection and reused', async () => {
    for (let i = 0; i < 3; i++) await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    // One transaction: every statement runs on the same connection, whose prepared statements we read.
    const prepared = await ctx.db.transaction().execute(async (trx) => {
      const first = await dequeueJobs(trx, { queue: Q, executorName: 'exec-a', maxJobs: 1 });
      const rest = await dequeueJobs(trx, { queue: Q, executorName: 'exec-a', maxJobs: 2 });
      assert.deepEqual([first.length, rest.length], [1, 2], 'the second call, with other values, reuses the statement');
      for (const { job, token } of [...first, ...rest]) {
        assert.equal((await findJobTokenOfExecutor(trx, token, 'exec-a'))?.jobId, job.id);
        assert.ok(await markComplete(trx, { jobId: job.id, queue: Q, executorName: 'exec-a', attempt: 1 }));
      }
      return (await sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements`.execute(trx)).rows;
    });
    const ours = prepared.filter((p) => p.name.startsWith('sandfleet_'));
    assert.ok(ours.some((p) => p.statement.includes('FOR UPDATE SKIP LOCKED')), 'the dequeue');
    assert.ok(ours.some((p) => p.statement.includes('WITH finished AS')), 'the final mark');
    assert.ok(ours.some((p) => p.statement.includes('pg_notify') && p.statement.includes('first_step_start_time')), "the final mark's announcement");
    assert.ok(ours.some((p) => p.statement.includes('"job_tokens"')), 'the token lookup');
    assert.equal(ours.length, 4, 'one each, however often they ran');
  });
});
