import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basicEnv, spawnProcess } from '@sandfleet/test-helpers';
import { ADMIN_TOKEN, SANDFLEET_BIN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { testBackends } from '@sandfleet/test-helpers/db';

const backend = testBackends()[0]!;

describe(`sandfleet jobs retry and list --repository (${backend})`, () => {
  let coordinator: CoordinatorServer;
  before(async () => {
    coordinator = await startCoordinatorServer(backend);
  });
  after(async () => coordinator?.close());

  // Asynchronously: the coordinator answering the CLI runs in this process.
  const cli = async (...args: string[]) => {
    const child = spawnProcess(process.execPath, [SANDFLEET_BIN, ...args], basicEnv({ SANDFLEET_URL: coordinator.url, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN }));
    return { status: await child.exit, output: child.output() };
  };

  it('retries a canceled job as a new one and refuses a queued job', async () => {
    const job = await coordinator.admin('POST', '/api/jobs', { queue: 'batches', repositoryName: 'github.com/acme/cli', commit: 'b'.repeat(40), dockerSteps: [{ image: 'x', commands: ['true'] }] });
    const refused = await cli('jobs', 'retry', String(job.id));
    assert.notEqual(refused.status, 0);
    assert.match(refused.output, /queued: only a completed, errored, failed or canceled job can be retried/);
    await coordinator.admin('POST', `/api/jobs/${job.id}/cancel`);
    const retried = await cli('jobs', 'retry', String(job.id));
    assert.equal(retried.status, 0, retried.output);
    const match = /job (\d+) queued in batches, retrying job (\d+)/.exec(retried.output);
    assert.ok(match, retried.output);
    assert.equal(Number(match[2]), job.id);
    const listed = await cli('jobs', 'list', '--repository', 'github.com/acme/cli');
    assert.equal(listed.status, 0, listed.output);
    const ids = listed.output.trim().split('\n').map((line) => Number(line.trim().split(/\s+/)[0]));
    assert.deepEqual(ids, [Number(match[1]), job.id]);
  });
});
