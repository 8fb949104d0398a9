import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import { deleteOrphanedJobTokens, dequeueJob, enqueueJob, findJobToken } from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { countRows, makeSpec } from './fixtures.js';

const Q = 'batches';

describeEachBackend('job tokens', (ctx) => {
  async function claim(executorName: string) {
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const claimed = await dequeueJob(ctx.db, { queue: Q, executorName });
    assert.ok(claimed);
    return claimed;
  }

  it('the janitor deletes tokens of jobs no longer processing or of an earlier attempt, and keeps live ones', async () => {
    const live = await claim('exec-live');
    const finished = await claim('exec-finished');
    const superseded = await claim('exec-superseded');
    // States reached without the statements that revoke tokens (as an older version could leave them).
    await sql`UPDATE jobs SET state = 'completed', finished_at = now() WHERE id = ${finished.job.id}`.execute(ctx.db);
    await sql`UPDATE jobs SET attempt = attempt + 1 WHERE id = ${superseded.job.id}`.execute(ctx.db);

    assert.equal(await deleteOrphanedJobTokens(ctx.db), 2);
    assert.equal(await countRows(ctx.db, 'job_tokens'), 1);
    assert.equal((await findJobToken(ctx.db, live.token))?.jobId, live.job.id);
    assert.equal(await findJobToken(ctx.db, finished.token), undefined);
    assert.equal(await findJobToken(ctx.db, superseded.token), undefined);
    assert.equal(await deleteOrphanedJobTokens(ctx.db), 0);
  });
});
