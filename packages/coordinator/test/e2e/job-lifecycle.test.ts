import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAlive } from '@sandfleet/test-helpers';
import { testBackends } from '@sandfleet/test-helpers/db';
import { createGitRepository, startCoordinator, startExecutor, waitFor, waitForJobState, type CoordinatorProcess, type ExecutorProcess } from './harness.js';

for (const backend of testBackends()) {
  describe(`job lifecycle through real processes (${backend})`, () => {
    let coordinator: CoordinatorProcess;
    let executor: ExecutorProcess;
    const repo = createGitRepository({ 'README.md': 'hello from the repository\n', 'src/data.txt': 'nested file\n' });

    before(async () => {
      coordinator = await startCoordinator(backend);
      const registered = await coordinator.api('POST', '/api/repositories', { name: 'github.com/sandfleet/e2e', source: repo.path });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      executor = startExecutor(coordinator.url);
    });
    after(async () => {
      await executor?.stop();
      await coordinator?.stop();
    });

    it('clones the repository, writes a file, runs two steps and redacts the secret', async () => {
      const secret = 'hunter2-very-secret-value';
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'batches',
        repositoryName: 'github.com/sandfleet/e2e',
        commit: repo.commit,
        files: { 'inputs/message.txt': { content: 'from the files map' } },
        dockerSteps: [
          { key: 'first', image: 'ignored-by-shell', commands: ['cat README.md', 'cat inputs/message.txt', `echo "token=$SECRET"`, 'echo step-one > marker-from-step-one'], dir: '', env: [`SECRET=${secret}`] },
          { key: 'second', image: 'ignored-by-shell', commands: ['cat ../marker-from-step-one', 'cat data.txt', 'echo "to stderr" >&2'], dir: 'src' },
        ],
        redactedValues: { [secret]: '[SECRET]' },
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const job = await waitForJobState(coordinator, submitted.body.id, ['completed', 'failed', 'errored'], 60_000);
      assert.equal(job.state, 'completed', JSON.stringify(job, null, 2));

      const logs: Array<{ key: string; out?: string; exitCode?: number }> = job.executionLogs;
      const byKey = new Map(logs.map((e) => [e.key, e]));
      assert.ok(byKey.has('setup.git.fetch'), `keys: ${[...byKey.keys()].join(', ')}`);
      const first = byKey.get('step.docker.first');
      const second = byKey.get('step.docker.second');
      assert.equal(first?.exitCode, 0);
      assert.equal(second?.exitCode, 0);
      assert.match(first!.out!, /stdout: hello from the repository/);
      assert.match(first!.out!, /stdout: from the files map/);
      assert.match(first!.out!, /token=\[SECRET\]/);
      assert.match(second!.out!, /stdout: step-one/);
      assert.match(second!.out!, /stdout: nested file/);
      assert.match(second!.out!, /stderr: to stderr/);
      const everything = JSON.stringify(logs);
      assert.ok(!everything.includes(secret), 'the secret must not reach the coordinator');
      assert.ok(!everything.includes('e2e-access-token'), 'the frontend password must not reach the logs');
    });

    it('cancels a running job within 10 s and kills its step process', async () => {
      const pidFile = path.join(coordinator.dataDir, `step-${Date.now()}.pid`);
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'batches',
        dockerSteps: [{ image: 'ignored', commands: [`echo $$ > ${pidFile}`, 'echo started', 'sleep 300'] }],
      });
      const id = submitted.body.id as number;
      await waitForJobState(coordinator, id, ['processing']);
      const pid = await waitFor('the step to write its pid', () => (fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim()) || undefined);
      const requested = Date.now();
      const canceled = await coordinator.api('POST', `/api/jobs/${id}/cancel`);
      assert.equal(canceled.status, 200);
      const job = await waitForJobState(coordinator, id, ['canceled', 'failed', 'completed'], 15_000);
      assert.equal(job.state, 'canceled');
      assert.ok(Date.now() - requested < 10_000, `took ${Date.now() - requested} ms`);
      await waitFor('the step process to be gone', () => (isAlive(Number(pid)) ? undefined : true), 5_000);
    });

    it('follows a running job log over Server-Sent Events', async () => {
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'batches',
        dockerSteps: [{ image: 'ignored', commands: ['for i in 1 2 3; do echo "tick $i"; sleep 0.3; done'] }],
      });
      const res = await fetch(`${coordinator.url}/api/jobs/${submitted.body.id}/logs`, { headers: { Authorization: 'Bearer e2e-admin-token-0123456789' } });
      assert.equal(res.headers.get('content-type')?.split(';')[0], 'text/event-stream');
      const text = await res.text(); // ends when the job ends
      assert.match(text, /event: output/);
      assert.match(text, /tick 3/);
      assert.match(text, /event: end\ndata: \{"state":"completed"\}/);
    });
  });
}
