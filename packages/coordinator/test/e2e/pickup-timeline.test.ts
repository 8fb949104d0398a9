import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { prometheusSample } from '@sandfleet/test-helpers';
import { testBackends } from '@sandfleet/test-helpers/db';
import { PICKUP_TIMELINE_METRICS } from '../../src/metrics.js';
import { createGitRepository, startCoordinator, startExecutor, waitForJobState, type CoordinatorProcess, type ExecutorProcess } from './harness.js';

const REPO = 'github.com/sandfleet/timeline';

for (const backend of testBackends()) {
  describe(`pickup timeline of a job run by a real executor (${backend})`, () => {
    let coordinator: CoordinatorProcess;
    let executor: ExecutorProcess;
    const repo = createGitRepository({ 'README.md': 'timeline\n' });

    before(async () => {
      coordinator = await startCoordinator(backend, {}, undefined, { 'sandfleet.queues': [{ name: 'timeline' }] });
      const registered = await coordinator.api('POST', '/api/repositories', { name: REPO, source: repo.path });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      executor = startExecutor(coordinator.url, { EXECUTOR_QUEUE_NAME: 'timeline' });
    });
    after(async () => {
      await executor?.stop();
      await coordinator?.stop();
      repo.cleanup();
    });

    it('observes each stage once for the queue, in order, adding up to the total', async () => {
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'timeline',
        repositoryName: REPO,
        commit: repo.commit,
        dockerSteps: [{ image: 'ignored-by-shell', commands: ['cat README.md', 'sleep 0.3'] }, { image: 'ignored-by-shell', commands: ['true'] }],
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const job = await waitForJobState(coordinator, submitted.body.id, ['completed', 'failed', 'errored'], 60_000);
      assert.equal(job.state, 'completed', JSON.stringify(job, null, 2));

      const text = await (await fetch(`${coordinator.url}/metrics`)).text();
      const stage = (metric: string) => ({
        count: prometheusSample(text, `${metric}_count`, { queue: 'timeline' }),
        sum: prometheusSample(text, `${metric}_sum`, { queue: 'timeline' })!,
      });
      const queued = stage(PICKUP_TIMELINE_METRICS.queued);
      const sandbox = stage(PICKUP_TIMELINE_METRICS.sandbox);
      const workspace = stage(PICKUP_TIMELINE_METRICS.workspace);
      const steps = stage(PICKUP_TIMELINE_METRICS.steps);
      const total = stage(PICKUP_TIMELINE_METRICS.total);
      for (const [name, s] of Object.entries({ queued, sandbox, workspace, steps, total })) {
        assert.equal(s.count, 1, `${name}: ${s.count} observations`);
        assert.ok(s.sum >= 0, `${name}: ${s.sum}`);
      }
      // The clone ran between the sandbox being ready and the first step; the first step slept.
      assert.ok(workspace.sum > 0, `workspace ${workspace.sum}`);
      assert.ok(steps.sum >= 0.3, `steps ${steps.sum}`);
      const parts = queued.sum + sandbox.sum + workspace.sum + steps.sum;
      assert.ok(Math.abs(parts - total.sum) < 1e-6, `stages ${parts} s, total ${total.sum} s`);
      // The total is the job's own queued → finished, as the API reports it (millisecond precision).
      const span = (Date.parse(job.finishedAt) - Date.parse(job.queuedAt)) / 1000;
      assert.ok(Math.abs(total.sum - span) < 0.002, `total ${total.sum} s, job ${span} s`);
      assert.ok(Math.abs(queued.sum - (Date.parse(job.startedAt) - Date.parse(job.queuedAt)) / 1000) < 0.002, `queued ${queued.sum} s`);
      // The other queues saw nothing.
      assert.equal(prometheusSample(text, `${PICKUP_TIMELINE_METRICS.total}_count`, { queue: 'batches' }) ?? 0, 0);
    });
  });
}
