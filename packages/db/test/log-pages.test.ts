import assert from 'node:assert/strict';
import { it } from 'node:test';
import { addLogEntry, appendLogChunk, dequeueJob, enqueueJob, readLogChunksSince, readLogEntryPage, readLogPageStart, utf8Bounds } from '../src/index.js';
import type { ExecutionLogEntry } from '@sandfleet/protocol';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { makeSpec } from './fixtures.js';

const STEP: ExecutionLogEntry = { key: 'step.0', command: ['sh'], startTime: '2026-12-01T00:00:00Z' };
const KIB = 1024;

describeEachBackend('log pages', (ctx) => {
  async function runningJob() {
    await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
    const claimed = await dequeueJob(ctx.db, { queue: 'batches', executorName: 'exec-pages' });
    assert.ok(claimed);
    return { jobId: claimed.job.id, attempt: claimed.job.attempt, executorName: 'exec-pages' };
  }

  it('pages through an entry by byte offset, on character boundaries, to exactly its whole output', async () => {
    const ref = await runningJob();
    const big = (await addLogEntry(ctx.db, { ...ref, entry: STEP }))!;
    // Multi-byte characters across chunk and page edges.
    const chunks = [`${'é'.repeat(100 * KIB)}\n`, `${'日本'.repeat(50 * KIB)}\n`, `${'🙂x'.repeat(30 * KIB)}\n`];
    for (const [seq, out] of chunks.entries()) assert.ok(await appendLogChunk(ctx.db, { ...ref, entryId: big, seq, out }));
    await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, key: 'step.1', out: 'short\n', exitCode: 0, durationMs: 1 } });
    const whole = chunks.join('');

    const start = await readLogPageStart(ctx.db, ref.jobId, 64 * KIB);
    assert.deepEqual(start.entries.map((e) => [e.idx, e.entry.key]), [[1, 'step.0'], [2, 'step.1']]);
    const first = start.entries[0]!;
    assert.equal(first.totalBytes, Buffer.byteLength(whole));
    assert.ok(Buffer.byteLength(first.out) <= 64 * KIB && Buffer.byteLength(first.out) > 64 * KIB - 4);
    assert.equal(first.nextOffset, Buffer.byteLength(first.out));
    assert.deepEqual(start.entries[1]!, { attempt: ref.attempt, idx: 2, entry: { ...STEP, key: 'step.1', exitCode: 0, durationMs: 1 }, out: 'short\n', nextOffset: 6, totalBytes: 6 });
    assert.equal(start.cursor, (await readLogChunksSince(ctx.db, ref.jobId, 0)).cursor, 'the cursor a follower would reach');

    let text = first.out;
    let offset = first.nextOffset;
    let pages = 1;
    while (offset < first.totalBytes) {
      const page = (await readLogEntryPage(ctx.db, ref.jobId, { attempt: ref.attempt, idx: big }, offset, 100 * KIB))!;
      assert.ok(page.nextOffset > offset, 'every page moves forward');
      text += page.out;
      offset = page.nextOffset;
      pages++;
    }
    assert.ok(pages >= 5);
    assert.equal(text, whole);
    assert.equal((await readLogEntryPage(ctx.db, ref.jobId, { attempt: ref.attempt, idx: big }, offset, 100 * KIB))?.out, '');
    assert.equal(await readLogEntryPage(ctx.db, ref.jobId, { attempt: ref.attempt, idx: 99 }, 0, KIB), undefined);
    // An offset inside a character starts at the next one.
    assert.equal((await readLogEntryPage(ctx.db, ref.jobId, { attempt: ref.attempt, idx: big }, 1, 4))?.out, 'é');
  });

  it('utf8Bounds keeps whole characters only', () => {
    const bytes = Buffer.from('aé日🙂');
    assert.deepEqual(utf8Bounds(bytes), { start: 0, end: bytes.length });
    assert.deepEqual(utf8Bounds(bytes.subarray(0, bytes.length - 1)), { start: 0, end: bytes.length - 4 });
    assert.deepEqual(utf8Bounds(bytes.subarray(2)), { start: 1, end: bytes.length - 2 });
    assert.deepEqual(utf8Bounds(new Uint8Array()), { start: 0, end: 0 });
  });
});
