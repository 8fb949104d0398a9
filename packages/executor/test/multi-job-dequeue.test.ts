import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoordinatorClient, type CoordinatorClientOptions } from '../src/index.js';
import { TestInstance } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';

const options = (url: string, password: string): CoordinatorClientOptions => ({
  frontendUrl: url,
  frontendPassword: password,
  executorName: 'multi-exec',
  queueNames: ['batches'],
  multiQueue: false,
});

describe('multi-job dequeue from the executor', () => {
  let coordinator: CoordinatorServer;
  let instance: TestInstance;
  before(async () => {
    coordinator = await startCoordinatorServer('pglite');
    instance = await TestInstance.start();
  });
  after(async () => {
    await coordinator?.close();
    await instance?.close();
  });

  it('takes several jobs in one request from a coordinator that offers it, each finishing with its own token', async () => {
    for (let i = 0; i < 3; i++) await coordinator.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['true'] }] });
    const client = new CoordinatorClient(options(coordinator.url, ACCESS_TOKEN));
    await client.ping();
    assert.equal(client.supports('multi-job-dequeue'), true);
    const jobs = await client.dequeueUpTo(5);
    assert.equal(jobs.length, 3, 'all three in one answer');
    assert.equal(new Set(jobs.map((j) => j.token)).size, 3);
    for (const job of jobs) {
      client.openJob(job);
      await client.markComplete(job);
      client.closeJob(job);
    }
    assert.deepEqual(await client.dequeueUpTo(5), []);
    for (const job of jobs) assert.equal((await coordinator.admin('GET', `/api/jobs/${job.id}`)).state, 'completed');
  });

  it('asks a Sourcegraph-like instance for one job, without the header', async () => {
    instance.enqueue({ id: 5 });
    instance.enqueue({ id: 6 });
    const client = new CoordinatorClient(options(instance.url, instance.password));
    await client.ping();
    const jobs = await client.dequeueUpTo(4);
    assert.deepEqual(jobs.map((j) => j.id), [5]);
    assert.equal(instance.requestsTo('/dequeue').at(-1)!.headers['x-sandfleet-dequeue-max-jobs'], undefined, 'never assume an extension');
  });
});
