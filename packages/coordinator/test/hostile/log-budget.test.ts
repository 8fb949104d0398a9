import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TRUNCATION_MARKER } from '@sandfleet/db';
import { testBackends } from '@sandfleet/test-helpers/db';
import { createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { jobHeaders } from '@sandfleet/test-helpers';

const QUEUE = 'batches';
const route = (op: string) => `/.executors/queue/${QUEUE}/${op}`;

for (const backend of testBackends()) {
  describe(`the per-job log budget (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { maxLogBytesPerJob: 1000 });
    });
    after(async () => t?.close());

    it('stores output up to the budget, notes the truncation once, and accepts later appends', async () => {
      const executorName = 'budget-executor';
      await t.executor('POST', route('heartbeat'), { executorName, version: 'V2', jobIds: [] });
      assert.equal((await t.admin('POST', '/api/jobs', { queue: QUEUE, dockerSteps: [{ image: 'x', commands: ['true'] }] })).status, 201);
      const job = (await (await t.executor('POST', route('dequeue'), { executorName, version: '5.3.0' })).json()) as { id: number; token: string };
      const send = (op: string, body: Record<string, unknown>) =>
        t.request('POST', route(op), { body: { executorName, jobId: job.id, ...body }, headers: jobHeaders(job, executorName) });
      const entryId = (await (await send('addExecutionLogEntry', { key: 'k', command: [], startTime: '' })).json()) as number;
      for (let seq = 0; seq < 10; seq++) {
        const res = await send('appendExecutionLog', { entryId, seq, out: `${String(seq).repeat(299)}\n` });
        assert.equal(res.status, 204, await res.text());
      }
      const second = await send('addExecutionLogEntry', { key: 'k2', command: [], startTime: '', out: 'dropped\n' });
      assert.equal(second.status, 200);
      const text = await (await t.admin('GET', `/api/jobs/${job.id}/log.txt`)).text();
      const output = text.split('\n').filter((l) => !l.startsWith('── ')).join('\n');
      assert.ok(Buffer.byteLength(output) <= 1000 + 2, `stored ${Buffer.byteLength(output)} bytes`);
      assert.equal(text.split(TRUNCATION_MARKER.trim()).length - 1, 1, text);
      assert.ok(text.startsWith(`── k \n${'0'.repeat(299)}\n${'1'.repeat(299)}\n${'2'.repeat(299)}\n`), text);
      assert.doesNotMatch(text, /dropped/);
      assert.equal((await send('markComplete', {})).status, 204);
    });
  });
}
