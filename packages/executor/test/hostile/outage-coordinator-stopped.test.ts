import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, startCoordinatorProcess, waitForJobState, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { makeTempDir, removeTempDir, startExecutorProcess, waitFor, type ExecutorProcess } from '@sandfleet/test-helpers';

/**
 * The coordinator stops answering (SIGSTOP) exactly as a job's step ends: the executor must keep
 * the last log output and the result, heartbeat again when the coordinator is back, and deliver
 * both, so the job completes once, in its first attempt, with its whole log. The outage is three
 * times the stall age, so a coordinator that judged the job by its missed heartbeats alone would
 * reset it; both are scaled down from the defaults (25 s stall age, 5 s heartbeats) to keep the
 * test short.
 */
const STALLED_MAX_AGE_MS = 5_000;
const OUTAGE_MS = 3 * STALLED_MAX_AGE_MS;
const TAIL_LINES = 200;

for (const backend of testBackends()) {
  describe(`a coordinator outage as a job ends (${backend})`, () => {
    let coordinator: CoordinatorProcess;
    let executor: ExecutorProcess;
    let signalDir: string;
    before(async () => {
      signalDir = makeTempDir('sandfleet-outage-');
      coordinator = await startCoordinatorProcess(backend, {
        SANDFLEET_STALLED_MAX_AGE: `${STALLED_MAX_AGE_MS}ms`,
        SANDFLEET_RESETTER_INTERVAL: '500ms',
      });
      executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, {
        EXECUTOR_RUNTIME: 'shell',
        EXECUTOR_QUEUE_POLL_INTERVAL: '200ms',
        EXECUTOR_HEARTBEAT_INTERVAL: '1s',
      });
    });
    after(async () => {
      if (coordinator) coordinator.child.kill('SIGCONT');
      await executor?.stop();
      await coordinator?.stop();
      removeTempDir(signalDir);
    });

    it('completes the job exactly once with its whole log after the coordinator is back', { timeout: 300_000 }, async () => {
      const go = path.join(signalDir, 'go');
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'batches',
        dockerSteps: [{
          image: 'ignored',
          commands: [
            'echo before-the-outage',
            `while [ ! -e '${go}' ]; do sleep 0.2; done`,
            `i=0; while [ $i -lt ${TAIL_LINES} ]; do echo "tail-line-$i"; i=$((i+1)); done`,
            'echo the-last-line',
          ],
        }],
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const id = submitted.body.id as number;
      const stepOut = async () => ((await coordinator.api('GET', `/api/jobs/${id}`)).body.executionLogs ?? []).find((e: { key: string }) => e.key === 'step.docker.0')?.out ?? '';
      await waitFor('the first output of the step', async () => (await stepOut()).includes('before-the-outage'), 60_000);

      // The coordinator stops; the step then prints the rest of its output and ends.
      coordinator.child.kill('SIGSTOP');
      try {
        fs.writeFileSync(go, '');
        await new Promise((r) => setTimeout(r, OUTAGE_MS));
      } finally {
        coordinator.child.kill('SIGCONT');
      }

      const job = await waitForJobState(coordinator, id, ['completed', 'failed', 'errored', 'canceled', 'queued'], 120_000);
      assert.equal(job.state, 'completed', JSON.stringify(job, null, 2));
      assert.equal(job.attempt, 1, 'the job ran once');
      assert.equal(job.numResets, 0, 'the job was not reset');
      const step = job.executionLogs.find((e: { key: string }) => e.key === 'step.docker.0');
      assert.equal(step.exitCode, 0);
      // The shell runtime traces each command on stderr (set -x); the output proper is on stdout.
      const lines = String(step.out).trimEnd().split('\n').filter((line) => line.startsWith('stdout: '));
      assert.deepEqual(lines, [
        'stdout: before-the-outage',
        ...Array.from({ length: TAIL_LINES }, (_, i) => `stdout: tail-line-${i}`),
        'stdout: the-last-line',
      ]);
      // Reported once: it stays completed, and the executor is not running it any more.
      await new Promise((r) => setTimeout(r, 2_000));
      assert.equal((await coordinator.api('GET', `/api/jobs/${id}`)).body.state, 'completed');

      // The coordinator and the executor are unharmed: the next job runs as usual.
      assert.equal((await fetch(`${coordinator.url}/healthz`)).status, 200);
      const next = await coordinator.api('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'ignored', commands: ['echo next'] }] });
      const nextJob = await waitForJobState(coordinator, next.body.id, ['completed', 'failed', 'errored'], 60_000);
      assert.equal(nextJob.state, 'completed', JSON.stringify(nextJob, null, 2));
      assert.equal(executor.child.exitCode, null, 'the executor is still running');
    });
  });
}
