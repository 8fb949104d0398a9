import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addLogEntry, appendLogChunk, dequeueJob } from '@sandfleet/db';
import { testBackends } from '@sandfleet/test-helpers/db';
import { createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';

const KIB = 1024;
const STEP = { key: 'step.0', command: ['sh'], startTime: '2026-12-01T00:00:00Z' };

for (const backend of testBackends()) {
  describe(`a job with a large log (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());

    it('shows the start of each step in the job view and streams the whole log as text', async () => {
      const submitted = await t.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['true'] }] });
      assert.equal(submitted.status, 201);
      const claimed = (await dequeueJob(t.database.db, { queue: 'batches', executorName: 'exec-log' }))!;
      const ref = { jobId: claimed.job.id, attempt: claimed.job.attempt, executorName: 'exec-log' };
      const entryId = (await addLogEntry(t.database.db, { ...ref, entry: STEP }))!;
      const chunks = Array.from({ length: 8 }, (_, i) => String.fromCharCode(97 + i).repeat(512 * KIB - 1) + '\n');
      for (const [seq, out] of chunks.entries()) await appendLogChunk(t.database.db, { ...ref, entryId, seq, out, ...(seq === 7 ? { exitCode: 0, durationMs: 5 } : {}) });

      const view: any = await (await t.admin('GET', `/api/jobs/${ref.jobId}`)).json();
      assert.equal(view.executionLogs.length, 1);
      assert.ok(view.executionLogs[0].out.length <= 64 * KIB, `the view holds ${view.executionLogs[0].out.length} characters`);
      assert.equal(view.executionLogs[0].outTruncated, true);
      assert.equal(view.executionLogs[0].outBytes, 8 * 512 * KIB);
      assert.equal(view.logText, `/api/jobs/${ref.jobId}/log.txt`);

      const text = await (await t.admin('GET', view.logText)).text();
      assert.equal(text, `── step.0 (exit 0, 5 ms)\n${chunks.join('')}`);
      assert.equal((await t.admin('GET', '/api/jobs/99999/log.txt')).status, 404);
      assert.equal((await t.request('GET', '/healthz')).status, 200);
    });
  });
}
