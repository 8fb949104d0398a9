import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addLogEntry, appendLogChunk, dequeueJob, markComplete, updateLogEntry, type LogFollowBatch } from '@sandfleet/db';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ADMIN_TOKEN, createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { orderLogBatch } from '../src/jobs/log-events.js';

interface SseEvent {
  event: string;
  id?: string;
  data: any;
}

/** Reads Server-Sent Events from a response until `until` says stop (or the stream ends). */
async function readEvents(res: Response, until: (events: SseEvent[]) => boolean = () => false): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return events;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const e: SseEvent = { event: 'message', data: undefined };
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) e.event = line.slice(6).trim();
          else if (line.startsWith('id:')) e.id = line.slice(3).trim();
          else if (line.startsWith('data:')) e.data = JSON.parse(line.slice(5));
        }
        events.push(e);
        if (until(events)) return events;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

const STEP = { key: 'step.0', command: ['true'], startTime: '2026-12-01T00:00:00Z' };

for (const backend of testBackends()) {
  describe(`user API (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      // No safety re-check within a test's lifetime: a follower that sees anything was woken by a notification.
      t = await createTestApp(backend, { logFollowRecheckMs: 600_000 });
    });
    after(async () => t?.close());

    const running = async () => {
      const res = await t.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['true'] }] });
      assert.equal(res.status, 201);
      const claimed = await dequeueJob(t.database.db, { queue: 'batches', executorName: 'exec-sse' });
      assert.ok(claimed);
      return { jobId: claimed.job.id, attempt: claimed.job.attempt, executorName: 'exec-sse', queue: 'batches' };
    };
    const logs = (id: number, lastEventId?: string) =>
      t.request('GET', `/api/jobs/${id}/logs`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, ...(lastEventId ? { 'Last-Event-ID': lastEventId } : {}) } });

    it('retries a finished job as a new job linked to it; refuses a running one (409) and an unknown one (404); filters by repository', async () => {
      const ref = await running();
      const early = await t.admin('POST', `/api/jobs/${ref.jobId}/retry`);
      assert.equal(early.status, 409);
      assert.match(((await early.json()) as { error: string }).error, /processing/);
      assert.equal((await t.admin('POST', '/api/jobs/987654/retry')).status, 404);
      assert.ok(await markComplete(t.database.db, ref));
      const res = await t.admin('POST', `/api/jobs/${ref.jobId}/retry`);
      assert.equal(res.status, 201);
      const retry = (await res.json()) as { id: number; state: string; queue: string; retryOf: number };
      assert.equal(retry.state, 'queued');
      assert.equal(retry.queue, 'batches');
      assert.equal(retry.retryOf, ref.jobId);
      const shown = (await (await t.admin('GET', `/api/jobs/${ref.jobId}`)).json()) as { attempts: { attempt: number; executorHostname: string; outcome: string }[] };
      assert.deepEqual(shown.attempts.map((a) => [a.attempt, a.executorHostname, a.outcome]), [[1, 'exec-sse', 'completed']]);

      const other = await t.admin('POST', '/api/jobs', { queue: 'batches', repositoryName: 'github.com/x/filtered', commit: 'a'.repeat(40), dockerSteps: [{ image: 'x', commands: ['true'] }] });
      assert.equal(other.status, 201);
      const otherId = ((await other.json()) as { id: number }).id;
      const listed = (await (await t.admin('GET', '/api/jobs?repository=github.com/x/filtered')).json()) as { jobs: { id: number }[] };
      assert.deepEqual(listed.jobs.map((j) => j.id), [otherId]);
    });

    it('refuses bucket/key files: the files API is not served here', async () => {
      const res = await t.admin('POST', '/api/jobs', { queue: 'batches', files: { 'inputs/b.txt': { bucket: 'batch-changes', key: 'spec1/file1' } } });
      assert.equal(res.status, 400);
      const { error } = (await res.json()) as { error: string };
      assert.match(error, /inputs\/b\.txt/);
      assert.match(error, /files API/);
      assert.match(error, /not serve/);
      assert.match(error, /"content"/);
    });

    it('streams a finished job in order: each step before its output, its exit after; resumes without gaps or repeats', async () => {
      const ref = await running();
      const e1 = (await addLogEntry(t.database.db, { ...ref, entry: STEP }))!;
      await appendLogChunk(t.database.db, { ...ref, entryId: e1, seq: 0, out: 'one\n' });
      await appendLogChunk(t.database.db, { ...ref, entryId: e1, seq: 1, out: 'two\n', exitCode: 0, durationMs: 7 });
      await addLogEntry(t.database.db, { ...ref, entry: { ...STEP, key: 'step.1', out: 'all at once\n', exitCode: 3, durationMs: 1 } });
      assert.ok(await markComplete(t.database.db, ref));

      const all = await readEvents(await logs(ref.jobId));
      const shown = all.filter((e) => e.event === 'entry' || e.event === 'output').map((e) => (e.event === 'output' ? e.data.out : `${e.data.key}${e.data.exitCode == null ? '' : ` exit ${e.data.exitCode}`}`));
      assert.deepEqual(shown, ['step.0', 'one\n', 'two\n', 'step.0 exit 0', 'step.1', 'all at once\n', 'step.1 exit 3']);
      assert.deepEqual(all.slice(-2).map((e) => e.event), ['state', 'end']);
      const ids = all.filter((e) => e.id !== undefined).map((e) => Number(e.id));
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids only grow');

      // Resuming after any event id gives exactly what followed it (announcements may repeat).
      const rows = (events: SseEvent[]) => events.filter((e) => e.id !== undefined).map((e) => `${e.event}:${e.id}`);
      for (const [i, e] of all.entries()) {
        if (e.id === undefined) continue;
        const resumed = await readEvents(await logs(ref.jobId, e.id));
        assert.deepEqual(rows(resumed), rows(all.slice(i + 1)), `resume after ${e.id}`);
      }
    });

    it('follows a running job, woken by notifications', async () => {
      const ref = await running();
      const entryId = (await addLogEntry(t.database.db, { ...ref, entry: STEP }))!;
      const res = await logs(ref.jobId);
      const seen = readEvents(res, (events) => events.some((e) => e.event === 'end'));
      await new Promise((r) => setTimeout(r, 300));
      await appendLogChunk(t.database.db, { ...ref, entryId, seq: 0, out: 'live\n' });
      await new Promise((r) => setTimeout(r, 300));
      await updateLogEntry(t.database.db, { ...ref, entryId, entry: { ...STEP, exitCode: 0, durationMs: 2, out: 'live\n' } });
      await markComplete(t.database.db, ref);
      const events = await seen;
      assert.deepEqual(
        events.filter((e) => e.event !== 'state').map((e) => [e.event, e.data.out ?? e.data.exitCode ?? e.data.state ?? null]),
        [['entry', null], ['output', 'live\n'], ['entry', 0], ['end', 'completed']],
      );
    });

    it('orders a batch cut at its chunk limit without moving the cursor past unsent rows', () => {
      const entry = { key: 'k', command: [], startTime: 's' };
      const batch: LogFollowBatch = {
        chunks: [
          { id: 5, attempt: 1, entryIdx: 1, out: 'a', replaces: false },
          { id: 6, attempt: 1, entryIdx: 1, out: 'b', replaces: false },
        ],
        entries: [{ changeId: 9, attempt: 1, idx: 1, entry: { ...entry, exitCode: 1 } }],
        cursor: 6,
      };
      const events = orderLogBatch(batch, new Set());
      assert.deepEqual(events.map((e) => [e.event, 'id' in e ? e.id : undefined]), [['entry', undefined], ['output', 5], ['output', 6]]);
      assert.equal((events[0]!.data as { exitCode?: number }).exitCode, undefined, 'the announcement carries no exit');
      assert.deepEqual(orderLogBatch(batch, new Set(['1:1'])).map((e) => e.event), ['output', 'output'], 'announced once per reader');
    });
  });
}
