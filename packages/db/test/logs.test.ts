import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import {
  addLogEntry,
  appendLogChunk,
  dequeueJob,
  enqueueJob,
  getLogEntries,
  markComplete,
  readLogChunksSince,
  type Notifier,
  resetStalled,
  updateLogEntry,
  type LogWriterRef,
} from '../src/index.js';
import type { ExecutionLogEntry } from '@sandfleet/protocol';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { backdateHeartbeat, countRows, makeSpec } from './fixtures.js';

const Q = 'batches';
const STEP: ExecutionLogEntry = { key: 'step.docker.0', command: ['docker', 'run', 'alpine'], startTime: '2026-11-28T00:00:00Z' };

describeEachBackend('execution logs', (ctx) => {
  async function running(executorName = 'exec-a'): Promise<LogWriterRef & { queue: string }> {
    await enqueueJob(ctx.db, { queue: Q, spec: makeSpec() });
    const claimed = await dequeueJob(ctx.db, { queue: Q, executorName });
    assert.ok(claimed);
    return { jobId: claimed.job.id, attempt: claimed.job.attempt, executorName, queue: Q };
  }

  async function chunkRows(jobId: number) {
    return ctx.db
      .selectFrom('execution_log_chunks')
      .select(['entry_idx', 'seq', 'out', 'replaces'])
      .where('job_id', '=', jobId)
      .orderBy('id')
      .execute();
  }

  it('adds entries with 1-based indexes and reads them back with their output', async () => {
    const ref = await running();
    assert.equal(await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, out: 'stdout: hello\n' } }), 1);
    assert.equal(await addLogEntry(ctx.db, { ...ref, entry: { key: 'step.2', startTime: 't2', exitCode: 0, durationMs: 12 } }), 2);
    assert.deepEqual(await getLogEntries(ctx.db, ref.jobId), [
      { ...STEP, out: 'stdout: hello\n' },
      { key: 'step.2', command: [], startTime: 't2', exitCode: 0, out: '', durationMs: 12 },
    ]);
    assert.deepEqual(await getLogEntries(ctx.db, 999_999), []);
  });

  it('update appends only the new suffix when the client resends the whole output', async () => {
    const ref = await running();
    const entryId = (await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, out: 'a' } }))!;
    assert.equal(await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, out: 'ab' } }), true);
    assert.equal(await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, out: 'abc😀' } }), true);
    assert.equal(await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, out: 'abc😀' } }), true);
    assert.deepEqual(await chunkRows(ref.jobId), [
      { entry_idx: 1, seq: 0, out: 'a', replaces: false },
      { entry_idx: 1, seq: 1, out: 'b', replaces: false },
      { entry_idx: 1, seq: 2, out: 'c😀', replaces: false },
    ]);
    await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, out: 'abc😀d', exitCode: 3, durationMs: 40 } });
    assert.deepEqual(await getLogEntries(ctx.db, ref.jobId), [{ ...STEP, out: 'abc😀d', exitCode: 3, durationMs: 40 }]);
  });

  it('update replaces the output when it no longer starts with what is stored', async () => {
    const ref = await running();
    const entryId = (await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, out: 'hello' } }))!;
    await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, out: 'hello world' } });
    assert.equal(await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, out: 'HELLO' } }), true);
    assert.deepEqual(await chunkRows(ref.jobId), [{ entry_idx: 1, seq: 2, out: 'HELLO', replaces: true }]);
    assert.equal((await getLogEntries(ctx.db, ref.jobId))[0]?.out, 'HELLO');
    // An update without `out` changes metadata only.
    await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, exitCode: 1 } });
    assert.deepEqual(await getLogEntries(ctx.db, ref.jobId), [{ ...STEP, exitCode: 1, out: 'HELLO' }]);
  });

  it('an unchanged resend rewrites nothing', async () => {
    const ref = await running();
    const entryId = (await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, out: 'x' } }))!;
    const version = async () =>
      (await sql<{ v: string }>`SELECT xmin::text AS v FROM execution_log_entries WHERE job_id = ${ref.jobId}`.execute(ctx.db)).rows[0]?.v;
    const before = await version();
    await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, out: 'x' } });
    assert.equal(await version(), before, 'entry row not rewritten');
    assert.equal(await countRows(ctx.db, 'execution_log_chunks'), 1);
  });

  it('append stores one row per chunk, ignores a repeated seq and sets exit code and duration', async () => {
    const ref = await running();
    const entryId = (await addLogEntry(ctx.db, { ...ref, entry: STEP }))!;
    assert.equal(await appendLogChunk(ctx.db, { ...ref, entryId, seq: 0, out: 'one\n' }), true);
    assert.equal(await appendLogChunk(ctx.db, { ...ref, entryId, seq: 1, out: 'two\n' }), true);
    assert.equal(await appendLogChunk(ctx.db, { ...ref, entryId, seq: 1, out: 'two\n' }), true, 'a retry is accepted');
    assert.equal(await appendLogChunk(ctx.db, { ...ref, entryId, seq: 2, out: '', exitCode: 0, durationMs: 1500 }), true);
    assert.deepEqual(await getLogEntries(ctx.db, ref.jobId), [{ ...STEP, exitCode: 0, out: 'one\ntwo\n', durationMs: 1500 }]);
    assert.deepEqual((await chunkRows(ref.jobId)).map((c) => c.seq), [1, 2, 3]);
    assert.equal(await appendLogChunk(ctx.db, { ...ref, entryId: 2, seq: 0, out: 'no such entry' }), false);
  });

  it('appending 2000 chunks stores 2000 small rows and never rewrites the entry', async () => {
    const ref = await running();
    const entryId = (await addLogEntry(ctx.db, { ...ref, entry: STEP }))!;
    const version = async () =>
      (await sql<{ v: string }>`SELECT xmin::text AS v FROM execution_log_entries WHERE job_id = ${ref.jobId}`.execute(ctx.db)).rows[0]?.v;
    const before = await version();
    const line = (i: number) => `stdout: line ${String(i).padStart(4, '0')} ${'x'.repeat(50)}\n`;
    for (let seq = 0; seq < 2000; seq++) {
      assert.equal(await appendLogChunk(ctx.db, { ...ref, entryId, seq, out: line(seq) }), true);
    }
    assert.equal(await version(), before, 'the entry row was never rewritten');
    const stats = await sql<{ n: number; longest: number; total: number }>`
      SELECT count(*)::integer AS n, max(length(out)) AS longest, sum(length(out))::integer AS total
      FROM execution_log_chunks WHERE job_id = ${ref.jobId}`.execute(ctx.db);
    const expected = Array.from({ length: 2000 }, (_, i) => line(i)).join('');
    assert.deepEqual(stats.rows[0], { n: 2000, longest: line(0).length, total: expected.length });
    assert.equal((await getLogEntries(ctx.db, ref.jobId))[0]?.out, expected);
  });

  it('refuses writes from another executor, a finished job, or an old attempt after a reset', async () => {
    const ref = await running('exec-a');
    const entryId = (await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, out: 'attempt 1' } }))!;
    const intruder = { ...ref, executorName: 'exec-b' };
    assert.equal(await addLogEntry(ctx.db, { ...intruder, entry: STEP }), undefined);
    assert.equal(await updateLogEntry(ctx.db, { ...intruder, entryId, entry: { ...STEP, out: 'x' } }), false);
    assert.equal(await appendLogChunk(ctx.db, { ...intruder, entryId, seq: 0, out: 'x' }), false);

    await backdateHeartbeat(ctx.db, ref.jobId, 60_000);
    await resetStalled(ctx.db, { queue: Q, stalledMaxAgeMs: 25_000, maxResets: 3 });
    const again = await dequeueJob(ctx.db, { queue: Q, executorName: 'exec-a' });
    assert.equal(again?.job.attempt, 2);
    const ref2 = { ...ref, attempt: 2 };
    assert.equal(await addLogEntry(ctx.db, { ...ref2, entry: { ...STEP, out: 'attempt 2' } }), 1, 'indexes restart per attempt');

    // The old attempt's executor (same name) is fenced out by the attempt number.
    assert.equal(await addLogEntry(ctx.db, { ...ref, entry: STEP }), undefined);
    assert.equal(await updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, out: 'attempt 1 late' } }), false);
    assert.equal(await appendLogChunk(ctx.db, { ...ref, entryId, seq: 5, out: 'late' }), false);

    assert.deepEqual((await getLogEntries(ctx.db, ref.jobId)).map((e) => e.out), ['attempt 2']);
    assert.deepEqual((await getLogEntries(ctx.db, ref.jobId, { attempt: 1 })).map((e) => e.out), ['attempt 1'], 'earlier attempts are kept');

    await markComplete(ctx.db, { ...ref2, queue: Q });
    assert.equal(await appendLogChunk(ctx.db, { ...ref2, entryId: 1, seq: 0, out: 'after completion' }), false);
  });

  it('a follower reads chunks and entry changes after its cursor, in order, in bounded batches', async () => {
    const ref = await running();
    const e1 = (await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, out: 'first\n' } }))!;
    const batch1 = await readLogChunksSince(ctx.db, ref.jobId, 0);
    assert.deepEqual(batch1.entries.map((e) => [e.attempt, e.idx, e.entry]), [[1, 1, STEP]]);
    assert.deepEqual(batch1.chunks.map((c) => [c.attempt, c.entryIdx, c.out, c.replaces]), [[1, 1, 'first\n', false]]);
    assert.equal(batch1.cursor, Math.max(batch1.chunks[0]!.id, batch1.entries[0]!.changeId));

    const idle = await readLogChunksSince(ctx.db, ref.jobId, batch1.cursor);
    assert.deepEqual(idle, { chunks: [], entries: [], cursor: batch1.cursor });

    await appendLogChunk(ctx.db, { ...ref, entryId: e1, seq: 0, out: 'second\n' });
    await appendLogChunk(ctx.db, { ...ref, entryId: e1, seq: 1, out: 'third\n', exitCode: 0, durationMs: 5 });
    const batch2 = await readLogChunksSince(ctx.db, ref.jobId, batch1.cursor);
    assert.deepEqual(batch2.chunks.map((c) => c.out), ['second\n', 'third\n']);
    assert.deepEqual(batch2.entries.map((e) => [e.idx, e.entry.exitCode, e.entry.durationMs]), [[1, 0, 5]]);

    await updateLogEntry(ctx.db, { ...ref, entryId: e1, entry: { ...STEP, exitCode: 0, durationMs: 5, out: 'rewritten' } });
    const batch3 = await readLogChunksSince(ctx.db, ref.jobId, batch2.cursor);
    assert.deepEqual(batch3.chunks.map((c) => [c.out, c.replaces]), [['rewritten', true]]);
    assert.deepEqual(batch3.entries, [], 'metadata did not change');

    // A small limit cuts the batch; entry changes beyond the last chunk wait for the next read.
    const e2 = (await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, key: 'two' } }))!;
    for (let seq = 0; seq < 3; seq++) await appendLogChunk(ctx.db, { ...ref, entryId: e2, seq, out: `c${seq}` });
    await appendLogChunk(ctx.db, { ...ref, entryId: e2, seq: 3, out: '', exitCode: 1 });
    const cut = await readLogChunksSince(ctx.db, ref.jobId, batch3.cursor, { limit: 2 });
    assert.deepEqual(cut.chunks.map((c) => c.out), ['c0', 'c1']);
    assert.equal(cut.cursor, cut.chunks[1]!.id, 'the cursor stops at the last chunk of a cut batch');
    assert.deepEqual(cut.entries.map((e) => [e.idx, e.entry.key]), [[2, 'two']], 'an entry comes no later than its first chunk');
    const rest = await readLogChunksSince(ctx.db, ref.jobId, cut.cursor, { limit: 2 });
    assert.deepEqual(rest.chunks.map((c) => c.out), ['c2', '']);
    const tail = await readLogChunksSince(ctx.db, ref.jobId, rest.cursor, { limit: 2 });
    assert.deepEqual(tail.chunks, []);
    const latest = [...cut.entries, ...rest.entries, ...tail.entries].at(-1);
    assert.deepEqual([latest?.entry.key, latest?.entry.exitCode], ['two', 1], 'the exit code change is delivered');
    assert.ok(tail.cursor >= rest.cursor);
  });
  it('an exit written with output comes after that output in cursor order', async () => {
    const ref = await running();
    const finished = { ...STEP, key: 'done', exitCode: 0, durationMs: 3, out: 'all at once\n' };
    const e1 = (await addLogEntry(ctx.db, { ...ref, entry: finished }))!;
    const e2 = (await addLogEntry(ctx.db, { ...ref, entry: STEP }))!;
    const afterAdd = await readLogChunksSince(ctx.db, ref.jobId, 0);
    const change = (b: typeof afterAdd, idx: number) => b.entries.find((e) => e.idx === idx)!.changeId;
    assert.ok(change(afterAdd, e1) > afterAdd.chunks[0]!.id, 'a step logged finished: exit after its output');

    await appendLogChunk(ctx.db, { ...ref, entryId: e2, seq: 0, out: 'last', exitCode: 1, durationMs: 4 });
    const afterAppend = await readLogChunksSince(ctx.db, ref.jobId, afterAdd.cursor);
    assert.ok(change(afterAppend, e2) > afterAppend.chunks[0]!.id, 'an exit sent with the last chunk comes after it');

    await updateLogEntry(ctx.db, { ...ref, entryId: e2, entry: { ...STEP, exitCode: 2, durationMs: 5, out: 'last and more' } });
    const afterUpdate = await readLogChunksSince(ctx.db, ref.jobId, afterAppend.cursor);
    assert.deepEqual(afterUpdate.chunks.map((c) => c.out), [' and more']);
    assert.ok(change(afterUpdate, e2) > afterUpdate.chunks[0]!.id, 'an exit resent with the full output comes after the new suffix');
  });

  it('notifies the job id on log writes and state changes', async () => {
    const notifier: Notifier = ctx.database.notifier;
    const ref = await running();
    const seen: number[] = [];
    const off = notifier.subscribeJobLogs((jobId) => seen.push(jobId));
    try {
      // PGlite may deliver before the write returns: count from before each write.
      const notifiesJob = async (write: () => Promise<unknown>) => {
        const before = seen.length;
        await write();
        for (let i = 0; i < 200 && seen.length === before; i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(seen.length > before, 'a notification arrived');
        assert.equal(seen.at(-1), ref.jobId);
      };
      let entryId = 0;
      await notifiesJob(async () => (entryId = (await addLogEntry(ctx.db, { ...ref, entry: STEP }))!));
      await notifiesJob(() => appendLogChunk(ctx.db, { ...ref, entryId, seq: 0, out: 'x' }));
      await notifiesJob(() => updateLogEntry(ctx.db, { ...ref, entryId, entry: { ...STEP, exitCode: 0 } }));
      await notifiesJob(() => markComplete(ctx.db, { ...ref, queue: Q }));
    } finally {
      off();
    }
  });
});
