import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import { createAdminToken, dequeueJob, enqueueJob, findJobTokenOfExecutor, tallyStatements, upsertExecutorHeartbeat, verifyAdminToken, type StatementTally } from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { makeSpec } from './fixtures.js';

/** How many statements `fn` sent. */
async function statementsOf(fn: () => Promise<unknown>): Promise<number> {
  const tally: StatementTally = { statements: 0 };
  await tallyStatements(tally, fn);
  return tally.statements;
}

describeEachBackend('statement tally', (ctx) => {
  it('counts each statement, BEGIN and COMMIT included, and only inside the tally', async () => {
    assert.equal(await statementsOf(() => sql`SELECT 1`.execute(ctx.db)), 1);
    assert.equal(
      await statementsOf(() =>
        ctx.db.transaction().execute(async (trx) => {
          await sql`SELECT 1`.execute(trx);
          await sql`SELECT 2`.execute(trx);
        }),
      ),
      4,
    );
    const outer: StatementTally = { statements: 0 };
    const inner: StatementTally = { statements: 0 };
    await tallyStatements(outer, async () => {
      await sql`SELECT 1`.execute(ctx.db);
      await tallyStatements(inner, () => sql`SELECT 2`.execute(ctx.db));
    });
    assert.deepEqual([outer.statements, inner.statements], [1, 1]);
    // Concurrent tallies keep apart.
    const [a, b] = await Promise.all([
      statementsOf(async () => {
        for (let i = 0; i < 3; i++) await sql`SELECT 1`.execute(ctx.db);
      }),
      statementsOf(() => sql`SELECT 1`.execute(ctx.db)),
    ]);
    assert.deepEqual([a, b], [3, 1]);
  });

  it('verifies an admin token, and looks a job token up with its executor, in one statement each', async () => {
    const { token } = await createAdminToken(ctx.db, { description: 'tally' });
    assert.equal(await statementsOf(() => verifyAdminToken(ctx.db, token)), 1, 'first use: the lookup touches last_used_at');
    assert.equal(await statementsOf(() => verifyAdminToken(ctx.db, token)), 1);
    assert.equal(await statementsOf(() => verifyAdminToken(ctx.db, 'wrong')), 1);

    await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
    await upsertExecutorHeartbeat(ctx.db, { hostname: 'tally-host', queueName: 'batches' });
    let claimed: Awaited<ReturnType<typeof dequeueJob>>;
    assert.equal(await statementsOf(async () => (claimed = await dequeueJob(ctx.db, { queue: 'batches', executorName: 'tally-host' }))), 1);
    let found: Awaited<ReturnType<typeof findJobTokenOfExecutor>>;
    assert.equal(await statementsOf(async () => (found = await findJobTokenOfExecutor(ctx.db, claimed!.token, 'tally-host'))), 1);
    assert.deepEqual(found, { jobId: claimed!.job.id, attempt: 1, queue: 'batches', repositoryName: makeSpec().repositoryName, executorKnown: true });
    assert.equal((await findJobTokenOfExecutor(ctx.db, claimed!.token, 'someone-else'))?.executorKnown, false);
    assert.equal(await findJobTokenOfExecutor(ctx.db, 'not-a-token', 'tally-host'), undefined);
  });
});
