import assert from 'node:assert/strict';
import { it } from 'node:test';
import { addLogEntry, appendLogChunk, dequeueJob, enqueueJob, getLogPreview, readLogChunksSince, readLogText, type LogWriterRef } from '../src/index.js';
import type { ExecutionLogEntry } from '@sandfleet/protocol';
import { describeEachBackend } from '@sandfleet/test-helpers/db';
import { makeSpec } from './fixtures.js';

const STEP: ExecutionLogEntry = { key: 'step.0', command: ['sh'], startTime: '2026-12-01T00:00:00Z' };
const KIB = 1024;

describeEachBackend('bounded log reads', (ctx) => {
  /** A running job with two steps: five 300 KiB chunks, then a short one. */
  async function jobWithLargeLog(): Promise<LogWriterRef & { chunks: string[] }> {
    await enqueueJob(ctx.db, { queue: 'batches', spec: makeSpec() });
    const claimed = await dequeueJob(ctx.db, { queue: 'batches', executorName: 'exec-big' });
    assert.ok(claimed);
    const ref = { jobId: claimed.job.id, attempt: claimed.job.attempt, executorName: 'exec-big' };
    const first = (await addLogEntry(ctx.db, { ...ref, entry: STEP }))!;
    const chunks = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(300 * KIB - 1) + '\n');
    for (const [seq, out] of chunks.entries()) assert.ok(await appendLogChunk(ctx.db, { ...ref, entryId: first, seq, out }));
    await addLogEntry(ctx.db, { ...ref, entry: { ...STEP, key: 'step.1', out: 'short\n', exitCode: 0, durationMs: 1 } });
    return { ...ref, chunks };
  }

  it('a follower read returns about a megabyte of output at most, and resuming loses nothing', async () => {
    const ref = await jobWithLargeLog();
    const seen: string[] = [];
    let cursor = 0;
    let reads = 0;
    for (;;) {
      const batch = await readLogChunksSince(ctx.db, ref.jobId, cursor);
      if (batch.cursor === cursor) break;
      reads++;
      const bytes = batch.chunks.reduce((sum, c) => sum + c.out.length, 0);
      assert.ok(bytes <= 1024 * KIB + 300 * KIB, `one read returned ${bytes} bytes`);
      seen.push(...batch.chunks.map((c) => c.out));
      cursor = batch.cursor;
    }
    assert.ok(reads >= 2, 'the log took several reads');
    assert.deepEqual(seen, [...ref.chunks, 'short\n']);
  });

  it('a preview holds the start of each step and its full size', async () => {
    const ref = await jobWithLargeLog();
    const preview = await getLogPreview(ctx.db, ref.jobId, 64 * KIB);
    assert.equal(preview.length, 2);
    assert.equal(preview[0]!.out, 'a'.repeat(64 * KIB));
    assert.equal(preview[0]!.outBytes, 5 * 300 * KIB);
    assert.equal(preview[0]!.outTruncated, true);
    assert.equal(preview[1]!.out, 'short\n');
    assert.equal(preview[1]!.outTruncated, false);
    assert.equal(preview[1]!.exitCode, 0);
  });

  it('the log text is read in bounded batches, in order', async () => {
    const ref = await jobWithLargeLog();
    const pieces = [];
    for await (const piece of readLogText(ctx.db, ref.jobId, { batchBytes: 500 * KIB })) pieces.push(piece);
    const outs = pieces.filter((p): p is { out: string } => 'out' in p).map((p) => p.out);
    assert.deepEqual(outs, [...ref.chunks, 'short\n']);
    assert.deepEqual(pieces.filter((p) => 'entry' in p).map((p) => ('entry' in p ? p.entry.key : '')), ['step.0', 'step.1']);
  });
});
