import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dequeueJob, getJob, queuedCount } from '@sandfleet/db';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ADMIN_TOKEN, createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';

const MAX_JOBS = 5;
const MAX_BODY = 4096;
const job = (queue: string, n: number) => ({ queue, cliSteps: [{ key: `step-${n}`, command: ['echo', String(n)] }] });

for (const backend of testBackends()) {
  describe(`POST /api/jobs/batch (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { maxBatchJobs: MAX_JOBS, maxBodyBytes: MAX_BODY }, { 'sandfleet.queues': [{ name: 'bulk' }, { name: 'bulk-empty' }] });
    });
    after(async () => t?.close());

    const batch = async (body: unknown, headers: Record<string, string> = {}) => {
      const res = await t.request('POST', '/api/jobs/batch', { ...(typeof body === 'string' ? { raw: body } : { body }), headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, ...headers } });
      return { status: res.status, body: (await res.json()) as { ids?: number[]; error?: string; index?: number; line?: number } };
    };

    it('queues a JSON array in order and answers the ids in order; the jobs are dequeued in that order', async () => {
      const jobs = [0, 1, 2, 3, 4].map((n) => job('bulk', n));
      const { status, body } = await batch(jobs);
      assert.equal(status, 201, JSON.stringify(body));
      const ids = body.ids!;
      assert.equal(ids.length, 5);
      for (const [n, id] of ids.entries()) {
        const stored = (await getJob(t.database.db, id))!;
        assert.equal(stored.queue, 'bulk');
        assert.equal(stored.state, 'queued');
        assert.deepEqual(stored.spec.cliSteps?.map((s) => s.key), [`step-${n}`], `job ${n} holds its own spec`);
      }
      const claimed: number[] = [];
      for (let claim = await dequeueJob(t.database.db, { queue: 'bulk', executorName: 'batch-exec' }); claim; claim = await dequeueJob(t.database.db, { queue: 'bulk', executorName: 'batch-exec' })) {
        claimed.push(claim.job.id);
      }
      assert.deepEqual(claimed, ids);
    });

    it('reads NDJSON, skipping blank lines, and names the line of a bad one', async () => {
      const ndjson = { 'Content-Type': 'application/x-ndjson' };
      const ok = await batch(`${JSON.stringify(job('bulk', 7))}\n\n${JSON.stringify(job('batches', 8))}\n`, ndjson);
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(ok.body.ids!.length, 2);
      assert.deepEqual([(await getJob(t.database.db, ok.body.ids![0]!))!.queue, (await getJob(t.database.db, ok.body.ids![1]!))!.queue], ['bulk', 'batches']);

      const bad = await batch(`${JSON.stringify(job('bulk-empty', 1))}\n\n{"queue": "bulk-empty",\n`, ndjson);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.index, 1);
      assert.equal(bad.body.line, 3);
      assert.match(bad.body.error!, /^job 1 \(line 3\): not valid JSON/);
      assert.equal(await queuedCount(t.database.db, 'bulk-empty', true), 0);
    });

    it('refuses the whole batch for one invalid job, naming its index and what is wrong', async () => {
      const cases: Array<[unknown, number, RegExp]> = [
        [[job('bulk-empty', 0), { ...job('bulk-empty', 1), priority: 'high' }, job('bulk-empty', 2)], 1, /^job 1: priority: /],
        [[job('bulk-empty', 0), job('bulk-empty', 1), job('nowhere', 2)], 2, /^job 2: queue: unknown queue "nowhere": the queues are .*bulk/],
        [[job('bulk-empty', 0), { ...job('bulk-empty', 1), files: { 'in.txt': { bucket: 'b', key: 'k' } } }], 1, /^job 1: files in\.txt: .*files API/],
        [[{ ...job('bulk-empty', 0), typo: true }], 0, /^job 0: .*typo/],
        [[job('bulk-empty', 0), 'not a job'], 1, /^job 1: \(job\): /],
      ];
      for (const [body, index, message] of cases) {
        const answer = await batch(body);
        assert.equal(answer.status, 400, JSON.stringify(answer.body));
        assert.equal(answer.body.index, index);
        assert.match(answer.body.error!, message);
      }
      assert.equal(await queuedCount(t.database.db, 'bulk-empty', true), 0, 'nothing of a refused batch was queued');
    });

    it('keeps to its budget: too many jobs or bytes are a 413, an empty or non-array body a 400', async () => {
      const many = await batch(Array.from({ length: MAX_JOBS + 1 }, (_, n) => job('bulk-empty', n)));
      assert.equal(many.status, 413);
      assert.match(many.body.error!, new RegExp(`at most ${MAX_JOBS} jobs, this one has ${MAX_JOBS + 1}`));
      const big = await batch([{ ...job('bulk-empty', 0), files: { 'a.txt': { content: 'x'.repeat(MAX_BODY) } } }]);
      assert.equal(big.status, 413);
      assert.match(big.body.error!, new RegExp(`larger than ${MAX_BODY} bytes`));
      assert.equal((await batch([])).status, 400);
      const object = await batch(job('bulk-empty', 0));
      assert.equal(object.status, 400);
      assert.match(object.body.error!, /JSON array/);
      const notJson = await batch('{"queue": ');
      assert.equal(notJson.status, 400);
      assert.match(notJson.body.error!, /not valid JSON.*x-ndjson/);
      assert.equal(await queuedCount(t.database.db, 'bulk-empty', true), 0);

      const limits = await t.admin('GET', '/api/jobs/batch');
      assert.equal(limits.status, 200);
      assert.deepEqual(await limits.json(), { maxJobs: MAX_JOBS, maxBodyBytes: MAX_BODY });
    });

    it('needs the admin token', async () => {
      const anonymous = await t.request('POST', '/api/jobs/batch', { body: [job('bulk-empty', 0)] });
      assert.equal(anonymous.status, 401);
      const wrong = await t.request('POST', '/api/jobs/batch', { body: [job('bulk-empty', 0)], headers: { Authorization: 'Bearer not-the-admin-token-0123456789' } });
      assert.equal(wrong.status, 401);
      assert.equal((await t.request('GET', '/api/jobs/batch')).status, 401);
      assert.equal(await queuedCount(t.database.db, 'bulk-empty', true), 0);
    });
  });
}
