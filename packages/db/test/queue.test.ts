import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import {
  cancelJob,
  dequeueJob,
  enqueueJob,
  enqueueJobs,
  findJobToken,
  getJob,
  heartbeatJobs,
  listJobs,
  markComplete,
  markErrored,
  markFailed,
  queueCounts,
  queuedCount,
  resetStalled,
  RESET_FAILURE_MESSAGE,
  tallyStatements,
  type JobAttemptRef,
} from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { backdateFinished, backdateHeartbeat, countRows, makeSpec } from './fixtures.js';

const Q = 'batches';
const RESET = { queue: Q, stalledMaxAgeMs: 25_000, maxResets: 3 };

describeEachBackend('queue', (ctx) => {
  async function claim(executorName = 'exec-a', queue = Q) {
    const claimed = await dequeueJob(ctx.db, { queue, executorName });
    assert.ok(claimed, 'expected a job to be claimed');
    const ref: JobAttemptRef = { jobId: claimed.job.id, queue, executorName, attempt: claimed.job.attempt };
    return { ...claimed, ref };
  }

  it('enqueues a batch in one statement: ids ascend in the order given, each job keeps its own spec, priority and repository', async () => {
    const queue = 'batch-order';
    const inputs = Array.from({ length: 25 }, (_, i) => ({
      queue,
      spec: makeSpec({ repositoryName: `github.com/batch/r${i}`, dockerSteps: [{ image: 'alpine:3', commands: [`echo ${i}`], dir: '' }] }),
      priority: i % 3 === 0 ? 0 : -1,
    }));
    const tally = { statements: 0 };
    const ids = await tallyStatements(tally, () => enqueueJobs(ctx.db, inputs));
    assert.equal(tally.statements, 1);
    assert.equal(ids.length, inputs.length);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids ascend in input order');
    for (const [i, id] of ids.entries()) {
      const job = (await getJob(ctx.db, id))!;
      assert.equal(job.state, 'queued');
      assert.equal(job.queue, queue);
      assert.equal(job.repositoryName, `github.com/batch/r${i}`);
      assert.equal(job.priority, inputs[i]!.priority);
      assert.deepEqual(job.spec, inputs[i]!.spec);
    }
    // Dequeued as any job: priority first, then the batch order.
    const expected = [...ids.filter((_, i) => inputs[i]!.priority === 0), ...ids.filter((_, i) => inputs[i]!.priority !== 0)];
    const claimed: number[] = [];
    for (;;) {
      const next = await dequeueJob(ctx.db, { queue, executorName: 'exec-batch' });
      if (!next) break;
      claimed.push(next.job.id);
    }
    assert.deepEqual(claimed, expected);
    assert.deepEqual(await enqueueJobs(ctx.db, []), []);
  });

  it('enqueues a batch all or nothing: one job the table refuses and none is inserted', async () => {
    const queue = 'batch-atomic';
    const good = { queue, spec: makeSpec() };
    await assert.rejects(enqueueJobs(ctx.db, [good, good, { ...good, priority: 2 ** 31 }, good]), /out of range/);
    assert.equal(await queuedCount(ctx.db, queue, true), 0);
    assert.equal((await enqueueJobs(ctx.db, [good, good])).length, 2);
    assert.equal(await queuedCount(ctx.db, queue, true), 2);
  });

  it('enqueues a queued job with its spec and copies the repository name out', async () => {
    const spec = makeSpec({ repositoryName: 'github.com/a/b' });
    const job = await enqueueJob(ctx.db, { queue: Q, spec, priority: 5 });
    assert.equal(job.state, 'queued');
    assert.equal(job.queue, Q);
    assert.equal(job.priority, 5);
    assert.equal(job.attempt, 0);
    assert.equal(job.repositoryName, 'github.com/a/b');
    assert.deepEqual(job.spec, spec);
    assert.deepEqual(await getJob(ctx.db, job.id), job);
  });

  it('dequeues by priority, then oldest first, only from the named queue', async () => {
    const low1 = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const other = await enqueueJob(ctx.db, { queue: 'codeintel', spec: makeSpec(), priority: 100 });
    const low2 = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const high = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), priority: 10 });
    const order: number[] = [];
    for (;;) {
      const claimed = await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-a' });
      if (!claimed) break;
      order.push(claimed.job.id);
    }
    assert.deepEqual(order, [high.id, low1.id, low2.id]);
    assert.equal((await getJob(ctx.db, other.id))?.state, 'queued');
  });

  it('sets processing, timestamps, worker, attempt + 1 and mints a 40-hex token scoped to the attempt', async () => {
    const job = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec({ repositoryName: 'r/x' }) });
    const { job: claimed, token } = await claim('exec-a');
    assert.equal(claimed.id, job.id);
    assert.equal(claimed.state, 'processing');
    assert.equal(claimed.workerHostname, 'exec-a');
    assert.equal(claimed.attempt, 1);
    assert.ok(claimed.startedAt && claimed.lastHeartbeatAt);
    assert.equal(claimed.finishedAt, null);
    assert.match(token, /^[0-9a-f]{40}$/);
    assert.deepEqual(await findJobToken(ctx.db, token), { jobId: job.id, attempt: 1, queue: Q, repositoryName: 'r/x' });
    assert.equal(await findJobToken(ctx.db, token.toUpperCase()), undefined);
    // Only the hash is stored.
    const stored = await sql<{ hex: string }>`SELECT encode(value_sha256, 'hex') AS hex FROM job_tokens`.execute(ctx.db);
    assert.equal(stored.rows.length, 1);
    assert.notEqual(stored.rows[0]!.hex, token);
    assert.equal(stored.rows[0]!.hex.length, 64);
  });

  it('returns undefined when nothing is claimable, and skips jobs whose process_after is in the future', async () => {
    assert.equal(await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-a' }), undefined);
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), processAfter: new Date(Date.now() + 3_600_000) });
    assert.equal(await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-a' }), undefined);
    const due = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), processAfter: new Date(Date.now() - 1000) });
    assert.equal((await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-a' }))?.job.id, due.id);
  });

  it('heartbeat knows only processing jobs held by the caller and reports cancel requests', async () => {
    const mine1 = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const mine2 = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const theirs = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const queued = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), priority: -1 });
    const a1 = await claim('exec-a');
    await claim('exec-a');
    await claim('exec-b');
    await backdateHeartbeat(ctx.db, mine1.id, 60_000);
    assert.equal(await cancelJob(ctx.db, mine2.id), 'processing');

    const result = await heartbeatJobs(ctx.db, { executorName: 'exec-a', queue: Q, jobIds: [mine1.id, mine2.id, theirs.id, queued.id, 999_999] });
    assert.deepEqual(result, { knownIds: [mine1.id, mine2.id], cancelIds: [mine2.id] });
    const refreshed = await getJob(ctx.db, mine1.id);
    assert.ok(refreshed!.lastHeartbeatAt! >= a1.job.lastHeartbeatAt!, 'heartbeat moved last_heartbeat_at forward');
    assert.deepEqual(await heartbeatJobs(ctx.db, { executorName: 'exec-a', queue: 'codeintel', jobIds: [mine1.id] }), { knownIds: [], cancelIds: [] });
    assert.deepEqual(await heartbeatJobs(ctx.db, { executorName: 'exec-a', queue: Q, jobIds: [] }), { knownIds: [], cancelIds: [] });
  });

  it('markComplete completes once, only for the holder, and revokes the token', async () => {
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const { ref, token } = await claim('exec-a');
    assert.equal(await markComplete(ctx.db, { ...ref, executorName: 'exec-b' }), undefined);
    assert.equal(await markComplete(ctx.db, { ...ref, queue: 'codeintel' }), undefined);
    const tally = { statements: 0 };
    const finished = await tallyStatements(tally, () => markComplete(ctx.db, ref));
    assert.equal(tally.statements, 2, 'the fenced finish, then its announcement with the timeline read');
    assert.equal(await markComplete(ctx.db, ref), undefined, 'a second mark finds no processing row');
    const job = await getJob(ctx.db, ref.jobId);
    assert.equal(job?.state, 'completed');
    assert.ok(job?.finishedAt);
    assert.equal(finished?.timelineError, undefined);
    assert.deepEqual(
      { queue: finished?.timeline?.queue, queuedAt: finished?.timeline?.queuedAt, dequeuedAt: finished?.timeline?.dequeuedAt, finishedAt: finished?.timeline?.finishedAt },
      { queue: Q, queuedAt: job?.queuedAt, dequeuedAt: job?.startedAt, finishedAt: job?.finishedAt },
      'the announcement read the committed finish',
    );
    assert.deepEqual(
      { sandboxEntry: finished?.timeline?.sandboxEntry, firstEntryStartTime: finished?.timeline?.firstEntryStartTime, firstStepStartTime: finished?.timeline?.firstStepStartTime },
      { sandboxEntry: null, firstEntryStartTime: null, firstStepStartTime: null },
    );
    assert.equal(await findJobToken(ctx.db, token), undefined);
  });

  it('markErrored fails at once with the default maxRetries 0, as Sourcegraph', async () => {
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const { ref, token } = await claim();
    assert.ok(await markErrored(ctx.db, { ...ref, errorMessage: 'boom' }));
    const job = await getJob(ctx.db, ref.jobId);
    assert.equal(job?.state, 'failed');
    assert.equal(job?.failureMessage, 'boom');
    assert.equal(job?.numFailures, 1);
    assert.equal(await findJobToken(ctx.db, token), undefined);
  });

  it('markErrored with retries leaves errored jobs for a re-dequeue after retry-after, then fails', async () => {
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const first = await claim();
    assert.ok(await markErrored(ctx.db, { ...first.ref, errorMessage: 'flaky', maxRetries: 2 }));
    let job = await getJob(ctx.db, first.ref.jobId);
    assert.equal(job?.state, 'errored');
    assert.equal(job?.numFailures, 1);
    assert.equal(await queuedCount(ctx.db, Q, false), 1, 'errored jobs count as queued');

    const retry = { queue: Q, executorName: 'exec-b', retryAfterMs: 60_000 };
    assert.equal(await dequeueJob(ctx.db, retry), undefined, 'retry-after has not passed');
    assert.equal(await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-b' }), undefined, 'a queue without retry-after never re-dequeues');
    await backdateFinished(ctx.db, first.ref.jobId, 120_000);
    const second = await dequeueJob(ctx.db, retry);
    assert.equal(second?.job.id, first.ref.jobId);
    assert.equal(second?.job.attempt, 2);
    assert.equal(second?.job.failureMessage, null);
    assert.equal(second?.job.finishedAt, null);

    assert.ok(await markErrored(ctx.db, { jobId: first.ref.jobId, queue: Q, executorName: 'exec-b', attempt: 2, errorMessage: 'again', maxRetries: 2 }));
    job = await getJob(ctx.db, first.ref.jobId);
    assert.equal(job?.state, 'failed');
    assert.equal(job?.numFailures, 2);
  });

  it('markFailed fails the job; a cancel request turns every failure mark into canceled', async () => {
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const a = await claim();
    const b = await claim();
    const c = await claim();
    assert.ok(await markFailed(ctx.db, { ...a.ref, errorMessage: 'fatal' }));
    assert.equal((await getJob(ctx.db, a.ref.jobId))?.state, 'failed');

    await cancelJob(ctx.db, b.ref.jobId);
    await cancelJob(ctx.db, c.ref.jobId);
    assert.ok(await markFailed(ctx.db, { ...b.ref, errorMessage: 'canceled by user' }));
    assert.ok(await markErrored(ctx.db, { ...c.ref, errorMessage: 'killed', maxRetries: 5 }));
    const jb = await getJob(ctx.db, b.ref.jobId);
    const jc = await getJob(ctx.db, c.ref.jobId);
    assert.equal(jb?.state, 'canceled');
    assert.equal(jc?.state, 'canceled');
    assert.equal(jc?.numFailures, 0, 'a canceled job is not counted as a failure');
  });

  it('cancel: queued and errored end now, processing is flagged, finished jobs are untouched', async () => {
    const queued = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), priority: -1 });
    const processing = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), priority: 2 });
    const errored = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec(), priority: 1 });
    const p = await claim();
    assert.equal(p.job.id, processing.id);
    const e = await claim();
    await markErrored(ctx.db, { ...e.ref, errorMessage: 'x', maxRetries: 3 });
    assert.equal((await getJob(ctx.db, errored.id))?.state, 'errored');

    assert.equal(await cancelJob(ctx.db, queued.id), 'canceled');
    assert.equal(await cancelJob(ctx.db, errored.id), 'canceled');
    assert.equal(await cancelJob(ctx.db, processing.id), 'processing');
    const q = await getJob(ctx.db, queued.id);
    assert.ok(q?.finishedAt);
    const pr = await getJob(ctx.db, processing.id);
    assert.equal(pr?.state, 'processing');
    assert.equal(pr?.cancel, true);
    assert.equal(await dequeueJob(ctx.db, { queue: Q, executorName: 'x', retryAfterMs: 1 }), undefined, 'canceled jobs are never dequeued');

    await markComplete(ctx.db, p.ref);
    assert.equal(await cancelJob(ctx.db, processing.id), undefined, 'a completed job stays completed');
    assert.equal((await getJob(ctx.db, processing.id))?.state, 'completed');
    assert.equal(await cancelJob(ctx.db, 424_242), undefined);
  });

  it('resetStalled requeues silent jobs, revokes their tokens and leaves live ones alone', async () => {
    const stalled = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const alive = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const s = await claim('exec-a');
    const a = await claim('exec-b');
    await backdateHeartbeat(ctx.db, stalled.id, 30_000);

    assert.deepEqual(await resetStalled(ctx.db, RESET), { reset: [stalled.id], failed: [], canceled: [] });
    const job = await getJob(ctx.db, stalled.id);
    assert.equal(job?.state, 'queued');
    assert.equal(job?.numResets, 1);
    assert.equal(job?.startedAt, null);
    assert.equal(await findJobToken(ctx.db, s.token), undefined, 'the stalled executor is locked out');
    assert.ok(await findJobToken(ctx.db, a.token));
    assert.equal((await getJob(ctx.db, alive.id))?.state, 'processing');
    assert.deepEqual(await resetStalled(ctx.db, RESET), { reset: [], failed: [], canceled: [] });
  });

  it('resetStalled fails a job that reached maxResets, and cancels a stalled job whose cancel was requested', async () => {
    const job = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const reset = { ...RESET, maxResets: 2 };
    for (let i = 1; i <= 2; i++) {
      await claim();
      await backdateHeartbeat(ctx.db, job.id, 30_000);
      assert.deepEqual(await resetStalled(ctx.db, reset), { reset: [job.id], failed: [], canceled: [] });
    }
    await claim();
    await backdateHeartbeat(ctx.db, job.id, 30_000);
    assert.deepEqual(await resetStalled(ctx.db, reset), { reset: [], failed: [job.id], canceled: [] });
    const failed = await getJob(ctx.db, job.id);
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.failureMessage, RESET_FAILURE_MESSAGE);
    assert.equal(failed?.numResets, 2);
    assert.ok(failed?.finishedAt);
    assert.equal(await countRows(ctx.db, 'job_tokens'), 0);

    const doomed = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    await claim();
    await cancelJob(ctx.db, doomed.id);
    await backdateHeartbeat(ctx.db, doomed.id, 30_000);
    assert.deepEqual(await resetStalled(ctx.db, reset), { reset: [], failed: [], canceled: [doomed.id] });
  });

  it('the attempt fences an old executor out after a reset, even under the same executor name', async () => {
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const old = await claim('exec-a');
    await backdateHeartbeat(ctx.db, old.ref.jobId, 30_000);
    await resetStalled(ctx.db, RESET);
    const fresh = await claim('exec-a');
    assert.equal(fresh.job.attempt, 2);
    assert.equal(await findJobToken(ctx.db, old.token), undefined);
    assert.equal((await findJobToken(ctx.db, fresh.token))?.attempt, 2);

    assert.equal(await markComplete(ctx.db, old.ref), undefined);
    assert.equal(await markErrored(ctx.db, { ...old.ref, errorMessage: 'late' }), undefined);
    assert.equal(await markFailed(ctx.db, { ...old.ref, errorMessage: 'late' }), undefined);
    assert.equal((await getJob(ctx.db, fresh.ref.jobId))?.state, 'processing');
    assert.ok(await markComplete(ctx.db, fresh.ref));
    assert.equal(await countRows(ctx.db, 'job_tokens'), 0);
  });

  it('a re-dequeue replaces the previous attempt token: one live token per job', async () => {
    const job = await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    await claim();
    await backdateHeartbeat(ctx.db, job.id, 30_000);
    // Revoke via reset, then re-insert an old-style leftover to prove the upsert replaces it.
    await resetStalled(ctx.db, RESET);
    await sql`INSERT INTO job_tokens (value_sha256, job_id, attempt, queue, repository_name)
              VALUES (decode(repeat('ab', 32), 'hex'), ${job.id}, 1, ${Q}, '')`.execute(ctx.db);
    const second = await claim();
    const rows = await ctx.db.selectFrom('job_tokens').select(['job_id', 'attempt']).execute();
    assert.deepEqual(rows, [{ job_id: job.id, attempt: 2 }]);
    assert.ok(await findJobToken(ctx.db, second.token));
  });

  it('lists newest first with filters and keyset pages; counts per queue and state', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() })).id);
    const other = await enqueueJob(ctx.db, { queue: 'codeintel', spec: makeSpec() });
    const c = await claim();
    await markComplete(ctx.db, c.ref);
    await claim();

    assert.deepEqual((await listJobs(ctx.db, { limit: 100 })).map((j) => j.id), [other.id, ...[...ids].reverse()]);
    const page1 = await listJobs(ctx.db, { queue: Q, limit: 2 });
    assert.deepEqual(page1.map((j) => j.id), [ids[4], ids[3]]);
    const page2 = await listJobs(ctx.db, { queue: Q, limit: 2, beforeId: page1.at(-1)!.id });
    assert.deepEqual(page2.map((j) => j.id), [ids[2], ids[1]]);
    assert.deepEqual((await listJobs(ctx.db, { state: 'completed', limit: 10 })).map((j) => j.id), [ids[0]]);

    assert.deepEqual(await queueCounts(ctx.db), {
      [Q]: { queued: 3, processing: 1, completed: 1, errored: 0, failed: 0, canceled: 0 },
      codeintel: { queued: 1, processing: 0, completed: 0, errored: 0, failed: 0, canceled: 0 },
    });
    assert.equal(await queuedCount(ctx.db, Q, false), 3);
    assert.equal(await queuedCount(ctx.db, Q, true), 4);
    assert.equal(await queuedCount(ctx.db, 'nothing-here', true), 0);
  });
});
