import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXTENSIONS_HEADER, MAX_DEQUEUE_JOBS, MAX_JOBS_HEADER, parseExtensions } from '@sandfleet/protocol';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { executorClient } from '@sandfleet/test-helpers';

type WireJob = { id: number; token: string; queue?: string };

for (const backend of testBackends()) {
  describe(`multi-job dequeue over the executor API (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());

    const enqueue = async (queue: string, count: number) => {
      for (let i = 0; i < count; i++) {
        const res = await t.admin('POST', '/api/jobs', { queue, dockerSteps: [{ image: 'x', commands: ['true'] }] });
        assert.equal(res.status, 201, await res.text());
      }
    };

    it('is advertised, answers a list of up to N jobs with their own tokens, and one job without the header', async () => {
      const client = executorClient(t.send, 'multi-a', ACCESS_TOKEN);
      await client.heartbeat('batches');
      await enqueue('batches', 4);
      const res = await t.executor('POST', '/.executors/queue/batches/dequeue', { executorName: 'multi-a', version: '5.3.0' }, { [MAX_JOBS_HEADER]: '3' });
      assert.ok(parseExtensions(res.headers.get(EXTENSIONS_HEADER)).has('multi-job-dequeue'));
      const jobs = (await res.json()) as WireJob[];
      assert.ok(Array.isArray(jobs));
      assert.equal(jobs.length, 3);
      assert.equal(new Set(jobs.map((j) => j.token)).size, 3);
      for (const job of jobs) assert.equal((await client.jobCall('batches', 'markComplete', job, {})).status, 204, 'each token finishes its own job');
      // The other job's token does not reach a job it was not minted for.
      const single = await client.dequeue('batches');
      assert.equal(single.status, 200);
      assert.ok(!Array.isArray(single.body), 'without the header the answer is one job, as Sourcegraph answers');
      assert.equal((await client.jobCall('batches', 'markComplete', { ...single.body, token: jobs[0]!.token }, {})).status, 401);
      assert.equal((await client.jobCall('batches', 'markComplete', single.body, {})).status, 204);
      assert.equal((await t.executor('POST', '/.executors/queue/batches/dequeue', { executorName: 'multi-a', version: '5.3.0' }, { [MAX_JOBS_HEADER]: '3' })).status, 204);
    });

    it('caps N, refuses a malformed header, and serves the multi-queue route', async () => {
      const bad = await t.executor('POST', '/.executors/queue/batches/dequeue', { executorName: 'multi-b', version: '5.3.0' }, { [MAX_JOBS_HEADER]: 'lots' });
      assert.equal(bad.status, 400);
      assert.match(await bad.text(), /must be a whole number/);
      await enqueue('codeintel', MAX_DEQUEUE_JOBS + 2);
      const capped = await t.executor('POST', '/.executors/queue/codeintel/dequeue', { executorName: 'multi-b', version: '5.3.0' }, { [MAX_JOBS_HEADER]: '1000' });
      assert.equal(((await capped.json()) as WireJob[]).length, MAX_DEQUEUE_JOBS);
      const multi = await t.executor('POST', '/.executors/queue/dequeue', { executorName: 'multi-b', version: '5.3.0', queues: ['codeintel'] }, { [MAX_JOBS_HEADER]: '5' });
      const rest = (await multi.json()) as WireJob[];
      assert.equal(multi.status, 200, JSON.stringify(rest));
      assert.deepEqual(rest.map((j) => j.queue), ['codeintel', 'codeintel']);
    });
  });
}
