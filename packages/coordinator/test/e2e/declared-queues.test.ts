import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, SANDFLEET_BIN } from '@sandfleet/test-helpers/coordinator';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { testBackends } from '@sandfleet/test-helpers/db';
import { executorClient, startCoordinator, startExecutor, waitFor, waitForJobState, type CoordinatorProcess, type ExecutorProcess } from './harness.js';

// Queue names do not depend on the database: one backend is enough.
const backend = testBackends()[0]!;
const DECLARED = { 'sandfleet.queues': [{ name: 'docs', weight: 2, limit: 10 }] };

/** `sandfleet <args>` as a client of `coordinator`, with the admin token in the environment. */
function sandfleet(coordinator: CoordinatorProcess, args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [SANDFLEET_BIN, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { PATH: process.env.PATH!, HOME: cwd, SANDFLEET_URL: coordinator.url, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe(`a queue declared in the site config (${backend})`, () => {
  let coordinator: CoordinatorProcess;
  let workDir: string;
  const executors: ExecutorProcess[] = [];

  before(async () => {
    workDir = makeTempDir('sandfleet-queues-');
    coordinator = await startCoordinator(backend, {}, undefined, DECLARED);
  });
  after(async () => {
    for (const executor of executors) await executor.stop();
    await coordinator?.stop();
    removeTempDir(workDir);
  });

  it('takes a job from the CLI that an executor with EXECUTOR_QUEUE_NAME=docs runs', async () => {
    const file = path.join(workDir, 'docs-job.json');
    fs.writeFileSync(file, JSON.stringify({ queue: 'docs', dockerSteps: [{ key: 'build', image: 'ignored-by-shell', commands: ['echo building the docs'] }] }));
    const submitted = sandfleet(coordinator, ['jobs', 'submit', file], workDir);
    assert.equal(submitted.status, 0, submitted.output);
    const id = Number(/submitted job (\d+) to queue docs/.exec(submitted.output)?.[1]);
    assert.ok(id > 0, submitted.output);

    const executor = startExecutor(coordinator.url, { EXECUTOR_QUEUE_NAME: 'docs', EXECUTOR_NAME: 'docs-only' });
    executors.push(executor);
    const job = await waitForJobState(coordinator, id, ['completed', 'failed', 'errored'], 90_000);
    assert.equal(job.state, 'completed', JSON.stringify(job, null, 2));
    assert.equal(job.queue, 'docs');
    assert.equal(job.workerHostname, 'docs-only');
    assert.match(job.executionLogs.find((e: { key: string }) => e.key === 'step.docker.build').out, /stdout: building the docs/);

    const listed = sandfleet(coordinator, ['jobs', 'list', '--queue', 'docs'], workDir);
    assert.equal(listed.status, 0, listed.output);
    assert.match(listed.output, new RegExp(`^\\s*${id}\\s+docs\\s+completed`, 'm'));
    const queues = sandfleet(coordinator, ['queues'], workDir);
    assert.match(queues.output, /^docs\s+.*completed=1/m);
    await executor.stop();
    executors.splice(executors.indexOf(executor), 1);
  });

  it('serves docs and batches to one executor with EXECUTOR_QUEUE_NAMES=docs,batches', async () => {
    const submit = async (queue: string) => {
      const answer = await coordinator.api('POST', '/api/jobs', { queue, dockerSteps: [{ image: 'x', commands: [`echo ran on ${queue}`] }] });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      return answer.body.id as number;
    };
    const ids = [await submit('docs'), await submit('batches'), await submit('docs')];
    executors.push(startExecutor(coordinator.url, { EXECUTOR_QUEUE_NAME: '', EXECUTOR_QUEUE_NAMES: 'docs,batches', EXECUTOR_NAME: 'docs-and-batches' }));
    for (const id of ids) {
      const job = await waitForJobState(coordinator, id, ['completed', 'failed', 'errored'], 90_000);
      assert.equal(job.state, 'completed', JSON.stringify(job, null, 2));
      assert.equal(job.workerHostname, 'docs-and-batches');
    }
    const { body } = await coordinator.api('GET', '/api/queues');
    assert.deepEqual(body.queues.map((q: { name: string }) => q.name), ['batches', 'codeintel', 'docs']);
    assert.equal(body.queues[2].counts.completed, 3);
    const { body: listed } = await coordinator.api('GET', '/api/jobs?queue=docs');
    assert.deepEqual([...new Set(listed.jobs.map((j: { queue: string }) => j.queue))], ['docs']);
    for (const id of [ids[0], ids[2]]) assert.ok(listed.jobs.some((j: { id: number }) => j.id === id), `job ${id} listed`);
    assert.ok(!listed.jobs.some((j: { id: number }) => j.id === ids[1]), 'the batches job is not listed');
  });

  it("answers an undeclared queue with Sourcegraph's error, the declared ones listed", async () => {
    const client = executorClient(coordinator.url, 'probe');
    const multi = await client.post('/.executors/queue/dequeue', { executorName: 'probe', version: '5.3.0', queues: ['docs', 'nope', 'manuals'] });
    assert.equal(multi.status, 500);
    assert.deepEqual(multi.body, { error: "Invalid queue name(s) 'nope, manuals' found. Supported queue names are 'batches, codeintel, docs'." });
    assert.equal((await client.dequeue('nope')).status, 404);
    assert.equal((await client.dequeue('docs')).status, 204);

    const submitted = await coordinator.api('POST', '/api/jobs', { queue: 'nope', dockerSteps: [{ image: 'x', commands: ['true'] }] });
    assert.equal(submitted.status, 400);
    assert.match(JSON.stringify(submitted.body), /unknown queue \\"nope\\": the queues are batches, codeintel, docs/);
    const listed = await coordinator.api('GET', '/api/jobs?queue=nope');
    assert.equal(listed.status, 400);
    assert.match(JSON.stringify(listed.body), /unknown queue: the queues are batches, codeintel, docs/);

    // An executor takes any well-formed name; the coordinator's answer reaches its log.
    const stray = startExecutor(coordinator.url, { EXECUTOR_QUEUE_NAME: '', EXECUTOR_QUEUE_NAMES: 'nope,docs' });
    executors.push(stray);
    await waitFor('the executor to log the coordinator\'s error', () => stray.output().includes("Invalid queue name(s) 'nope' found. Supported queue names are 'batches, codeintel, docs'.") || undefined, 60_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${stray.output()}`);
      });
  });
});

describe('sandfleet serve with a bad sandfleet.queues', () => {
  it('refuses to start (exit 2), naming each problem', () => {
    const dir = makeTempDir('sandfleet-bad-queues-');
    try {
      const site = path.join(dir, 'site.json');
      const queues = [{ name: 'batches' }, { name: 'Docs' }, { name: 'docs', weight: 0 }, { name: 'manuals', limit: -3 }, { name: 'manuals' }, { name: 'x', priority: 1 }];
      fs.writeFileSync(site, JSON.stringify({ 'executors.accessToken': 'a-long-enough-secret-for-executors', 'sandfleet.queues': queues }));
      const result = spawnSync(process.execPath, [SANDFLEET_BIN, 'serve', '--port', '0', '--data-dir', dir, '--site-config', site], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env.PATH!, HOME: dir },
      });
      assert.equal(result.status, 2, result.stderr);
      const lines = result.stderr;
      assert.match(lines, /sandfleet\.queues\.0\.name: "batches" always exists and cannot be declared/);
      assert.match(lines, /sandfleet\.queues\.1\.name: a queue name is lowercase letters, digits, '-' and '_'/);
      assert.match(lines, /sandfleet\.queues\.2\.weight: Too small: expected number to be >0/);
      assert.match(lines, /sandfleet\.queues\.3\.limit: Too small: expected number to be >0/);
      assert.match(lines, /sandfleet\.queues\.4\.name: "manuals" is declared twice/);
      assert.match(lines, /sandfleet\.queues\.5: Unrecognized key: "priority"/);
    } finally {
      removeTempDir(dir);
    }
  });
});
