import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { executorClient, startCoordinator, startExecutor, waitForJobState, type CoordinatorProcess } from './harness.js';

// Short stall detection so the tests see a reset within seconds (production: 25 s).
const FAST_RESET = { SANDFLEET_STALLED_MAX_AGE: '3s', SANDFLEET_RESETTER_INTERVAL: '500ms' };
// Executors must heartbeat well inside that age, as the real 5 s interval is inside the real 25 s.
const FAST_HEARTBEAT = { EXECUTOR_HEARTBEAT_INTERVAL: '500ms' };

for (const backend of testBackends()) {
  describe(`crashed executors (${backend})`, () => {
    let coordinator: CoordinatorProcess;
    before(async () => {
      coordinator = await startCoordinator(backend, FAST_RESET);
    });
    after(async () => coordinator?.stop());

    it('requeues the job of a SIGKILLed executor and a second executor completes it', async () => {
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'batches',
        dockerSteps: [{ image: 'ignored', commands: ['echo attempt', 'sleep 4', 'echo finished'] }],
      });
      const id = submitted.body.id as number;
      const first = startExecutor(coordinator.url, FAST_HEARTBEAT);
      await waitForJobState(coordinator, id, ['processing']);
      await first.stop('SIGKILL');
      const second = startExecutor(coordinator.url, FAST_HEARTBEAT);
      try {
        const job = await waitForJobState(coordinator, id, ['completed', 'failed'], 60_000);
        assert.equal(job.state, 'completed', JSON.stringify(job, null, 2));
        assert.equal(job.numResets, 1);
        assert.ok(job.attempt >= 2);
      } finally {
        await second.stop();
      }
    });

    it('refuses late writes from the attempt that was reset', async () => {
      const submitted = await coordinator.api('POST', '/api/jobs', { queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['true'] }] });
      const id = submitted.body.id as number;
      const stale = executorClient(coordinator.url, 'stale-executor');
      await stale.heartbeat('codeintel');
      const claimed = await stale.dequeue('codeintel');
      assert.equal(claimed.status, 200);
      assert.equal(claimed.body.id, id);
      const entry = await stale.jobCall('codeintel', 'addExecutionLogEntry', claimed.body, { key: 'step.docker.0', command: ['true'], startTime: new Date().toISOString() });
      assert.equal(entry.status, 200);

      // The stale executor stops heartbeating; the resetter requeues the job and a fresh one claims it.
      await waitForJobState(coordinator, id, ['queued'], 15_000);
      const fresh = executorClient(coordinator.url, 'fresh-executor');
      await fresh.heartbeat('codeintel');
      const reclaimed = await fresh.dequeue('codeintel');
      assert.equal(reclaimed.body.id, id);
      assert.notEqual(reclaimed.body.token, claimed.body.token);

      const lateLog = await stale.jobCall('codeintel', 'addExecutionLogEntry', claimed.body, { key: 'late', command: [], startTime: new Date().toISOString() });
      assert.equal(lateLog.status, 401, lateLog.text);
      const lateComplete = await stale.jobCall('codeintel', 'markComplete', claimed.body, {});
      assert.equal(lateComplete.status, 401, lateComplete.text);
      // Even with the shared secret instead of the revoked token, the owner check refuses it.
      const viaSecret = await stale.post('/.executors/queue/codeintel/markComplete', { executorName: 'stale-executor', jobId: id }, {
        'X-Sourcegraph-Job-ID': String(id),
        'X-Sourcegraph-Executor-Name': 'stale-executor',
      });
      assert.equal(viaSecret.status, 404);

      const done = await fresh.jobCall('codeintel', 'markComplete', reclaimed.body, {});
      assert.equal(done.status, 204, done.text);
      const job = (await coordinator.api('GET', `/api/jobs/${id}`)).body;
      assert.equal(job.state, 'completed');
      assert.ok(!job.executionLogs.some((e: { key: string }) => e.key === 'late'));
    });
  });
}
