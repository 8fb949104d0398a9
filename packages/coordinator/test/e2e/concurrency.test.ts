import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { executorClient, startCoordinator, type CoordinatorProcess } from './harness.js';

for (const backend of testBackends()) {
  describe(`concurrent dequeues over HTTP (${backend})`, () => {
    let coordinator: CoordinatorProcess;
    before(async () => {
      coordinator = await startCoordinator(backend);
    });
    after(async () => coordinator?.stop());

    it('hands 50 jobs to 5 executors dequeuing at once, each job exactly once', async () => {
      for (let i = 0; i < 50; i++) {
        const res = await coordinator.api('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: [`echo ${i}`] }] });
        assert.equal(res.status, 201);
      }
      const claimedBy = await Promise.all(
        Array.from({ length: 5 }, async (_, n) => {
          const client = executorClient(coordinator.url, `concurrent-${n}`);
          await client.heartbeat('batches');
          const ids: number[] = [];
          for (;;) {
            const res = await client.dequeue('batches');
            if (res.status === 204) return ids;
            assert.equal(res.status, 200, res.text);
            ids.push(res.body.id);
          }
        }),
      );
      const all = claimedBy.flat();
      assert.equal(all.length, 50);
      assert.equal(new Set(all).size, 50, 'no job may be handed out twice');
      const { body } = await coordinator.api('GET', '/api/queues');
      const batches = body.queues.find((q: { name: string }) => q.name === 'batches');
      assert.equal(batches.counts.processing, 50);
      assert.equal(batches.counts.queued, 0);
    });
  });
}
