import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  CoordinatorClient,
  CoordinatorUnreachableError,
  EXECUTOR_VERSION,
  JobFencedError,
  UnexpectedStatusError,
  type CoordinatorClientOptions,
} from '../src/index.js';
import { supportsJobPayloadV2 } from '@sandfleet/protocol';
import { TestInstance } from '@sandfleet/test-helpers';

describe('coordinator client', () => {
  let instance: TestInstance;
  before(async () => {
    instance = await TestInstance.start();
  });
  after(() => instance.close());

  const make = (options: Partial<CoordinatorClientOptions> = {}) =>
    new CoordinatorClient({
      frontendUrl: instance.url,
      frontendPassword: instance.password,
      executorName: 'exec-a',
      queueNames: ['codeintel'],
      multiQueue: false,
      resources: { numCPUs: 4, memory: '12G', diskSpace: '20G' },
      ...options,
    });

  it('reports a version that gets the v2 payload from Sourcegraph', () => {
    assert.equal(EXECUTOR_VERSION, '5.3.0+sandfleet.0.1.0');
    assert.equal(supportsJobPayloadV2(EXECUTOR_VERSION), true);
  });

  it('checks auth with the executor token', async () => {
    await make().testAuth();
    assert.equal(instance.requests.at(-1)!.headers.authorization, `token-executor ${instance.password}`);
    await assert.rejects(make({ frontendPassword: 'wrong' }).testAuth(), (err: unknown) =>
      err instanceof UnexpectedStatusError && err.status === 401 && err.message === 'unexpected status code 401');
  });

  it('dequeues from the single-queue endpoint with the executor token and resource metadata', async () => {
    const client = make();
    assert.equal(await client.dequeue(), undefined);
    const request = instance.requests.at(-1)!;
    assert.equal(request.path, '/.executors/queue/codeintel/dequeue');
    assert.equal(request.headers.authorization, `token-executor ${instance.password}`);
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['x-sourcegraph-job-id'], undefined);
    assert.deepEqual(request.body, { executorName: 'exec-a', version: EXECUTOR_VERSION, numCPUs: 4, memory: '12G', diskSpace: '20G' });

    instance.enqueue({ version: 2, id: 42, dockerSteps: [{ image: 'alpine', commands: ['true'] }] });
    const job = await client.dequeue();
    assert.equal(job?.id, 42);
    assert.equal(job?.uid, '42');
    assert.equal(job?.queue, 'codeintel');
    assert.equal(job?.token, 'job-token-42');
  });

  it('sends job routes with the job token, job ID and executor name', async () => {
    const client = make();
    const job = { id: 42, token: 'job-token-42', queue: 'codeintel' };
    const entryId = await client.addExecutionLogEntry(job, { key: 'k', command: ['a'], startTime: '2024-01-01T00:00:00Z' });
    await client.markErrored(job, 'boom');
    const add = instance.requestsTo('/addExecutionLogEntry').at(-1)!;
    assert.equal(add.path, '/.executors/queue/codeintel/addExecutionLogEntry');
    assert.equal(add.headers.authorization, 'Bearer job-token-42');
    assert.equal(add.headers['x-sourcegraph-job-id'], '42');
    assert.equal(add.headers['x-sourcegraph-executor-name'], 'exec-a');
    assert.deepEqual(add.body, { executorName: 'exec-a', jobId: 42, key: 'k', command: ['a'], startTime: '2024-01-01T00:00:00Z' });
    assert.equal(typeof entryId, 'number');
    const mark = instance.requestsTo('/markErrored').at(-1)!;
    assert.deepEqual(mark.body, { executorName: 'exec-a', jobId: 42, errorMessage: 'boom' });
    // Jobs from instances without job tokens use the executor token instead.
    await client.markComplete({ id: 43, token: '', queue: 'codeintel' });
    assert.equal(instance.requestsTo('/markComplete').at(-1)!.headers.authorization, `token-executor ${instance.password}`);
  });

  it('heartbeats the single queue with version V2 and integer job IDs', async () => {
    instance.cancelIds.add('7');
    instance.forgottenIds.add('8');
    const result = await make().heartbeat(['6', '7', '8']);
    const request = instance.requests.at(-1)!;
    assert.equal(request.path, '/.executors/queue/codeintel/heartbeat');
    assert.equal(request.body.version, 'V2');
    assert.deepEqual(request.body.jobIds, [6, 7, 8]);
    assert.equal(request.body.executorName, 'exec-a');
    assert.equal(request.body.executorVersion, EXECUTOR_VERSION);
    assert.equal(typeof request.body.os, 'string');
    assert.equal(typeof request.body.architecture, 'string');
    assert.equal(request.body.jobIdsByQueue, undefined);
    assert.deepEqual(result, { knownIds: ['6', '7'], cancelIds: ['7'] });
  });

  it('uses the multi-queue endpoints and <id>-<queue> IDs when several queues are configured', async () => {
    const client = make({ queueNames: ['codeintel', 'batches'], multiQueue: true });
    instance.enqueue({ id: 9, queue: 'batches' });
    const job = await client.dequeue();
    const dequeue = instance.requests.at(-1)!;
    assert.equal(dequeue.path, '/.executors/queue/dequeue');
    assert.deepEqual(dequeue.body.queues, ['codeintel', 'batches']);
    assert.equal(job?.uid, '9-batches');
    assert.equal(job?.queue, 'batches');

    instance.cancelIds.add('3-codeintel');
    const result = await client.heartbeat(['9-batches', '3-codeintel', '4-codeintel']);
    const heartbeat = instance.requests.at(-1)!;
    assert.equal(heartbeat.path, '/.executors/queue/heartbeat');
    assert.deepEqual(heartbeat.body.queueNames, ['codeintel', 'batches']);
    assert.deepEqual(heartbeat.body.jobIdsByQueue, [
      { queueName: 'batches', jobIds: ['9'] },
      { queueName: 'codeintel', jobIds: ['3', '4'] },
    ]);
    assert.equal(heartbeat.body.jobIds, undefined);
    assert.deepEqual(result.cancelIds, ['3-codeintel']);
    assert.deepEqual(result.knownIds.sort(), ['3-codeintel', '4-codeintel', '9-batches']);

    await client.markComplete(job!);
    assert.equal(instance.requests.at(-1)!.path, '/.executors/queue/batches/markComplete');
  });

  it('turns other statuses into UnexpectedStatusError carrying status and body, without retrying a 4xx', async () => {
    instance.failOperations.set('markFailed', 409);
    const before = instance.requestsTo('/markFailed').length;
    try {
      await assert.rejects(make().markFailed({ id: 1, token: 't', queue: 'codeintel' }, 'x'), (err: unknown) => {
        assert.ok(err instanceof UnexpectedStatusError);
        assert.equal(err.name, 'UnexpectedStatusError');
        assert.equal(err.status, 409);
        assert.equal(err.body, '{"error":"forced markFailed failure"}');
        return true;
      });
      assert.equal(instance.requestsTo('/markFailed').length - before, 1);
    } finally {
      instance.failOperations.delete('markFailed');
    }
  });

  it('retries a job route answered 5xx until the instance takes it', async () => {
    instance.failOperations.set('markComplete', 503);
    const before = instance.requestsTo('/markComplete').length;
    const retries: number[] = [];
    const marked = make({ retryBaseDelayMs: 10, onRetry: ({ attempt }) => retries.push(attempt) }).markComplete({ id: 61, token: 't', queue: 'codeintel' });
    await instance.waitFor('three refused marks', () => instance.requestsTo('/markComplete').length - before >= 3);
    instance.failOperations.delete('markComplete');
    await marked;
    assert.ok(instance.marks.some((m) => m.op === 'markComplete' && m.jobId === 61));
    assert.ok(retries.length >= 2);
  });

  it('stops a job route when the attempt is fenced out: 401, 403, 404, or 500 "unknown job"', async () => {
    for (const status of [401, 403, 404]) {
      instance.failOperations.set('markComplete', status);
      await assert.rejects(make({ retryBaseDelayMs: 10 }).markComplete({ id: 62, token: 't', queue: 'codeintel' }), (err: unknown) =>
        err instanceof JobFencedError && err instanceof UnexpectedStatusError && err.status === status);
    }
    instance.failOperations.delete('markComplete');
    // Sourcegraph answers log calls for a job it no longer has with 500 "unknown job".
    await assert.rejects(make({ retryBaseDelayMs: 10 }).updateExecutionLogEntry({ id: 404404, token: 't', queue: 'codeintel' }, 1, { key: 'k', command: [], startTime: new Date().toISOString() }), JobFencedError);
  });

  it('stops retrying a job route at once when the job is fenced, and runs beforeRetry before every retry', async () => {
    instance.failOperations.set('markComplete', 502);
    try {
      const client = make({ retryBaseDelayMs: 10 });
      const job = { id: 63, token: 't', queue: 'codeintel' };
      client.openJob(job);
      let probes = 0;
      const marked = client.markComplete(job, { beforeRetry: async () => void probes++ });
      await instance.waitFor('a retried mark', () => probes >= 2);
      client.fenceJob(job, 'the coordinator no longer knows the job');
      await assert.rejects(marked, JobFencedError);
      client.closeJob(job);
      assert.equal(instance.marks.some((m) => m.jobId === 63), false);
    } finally {
      instance.failOperations.delete('markComplete');
    }
  });

  it('reads Go-style keys case-insensitively in dequeue and heartbeat answers; an exact key wins', async () => {
    const goStyle = http.createServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      if (req.url!.endsWith('/heartbeat')) {
        return void res.end('{"knownIds":["7","8"],"KNOWNIDS":["1"],"CancelIDs":["8"]}');
      }
      res.end(JSON.stringify({
        ID: 71, Token: 'tok-71', RepositoryName: 'github.com/a/b', Commit: 'abc', FetchTags: true,
        DockerSteps: [{ Image: 'alpine', Commands: ['echo hi'], Dir: 'sub', Env: ['A=1'] }],
        Files: { 'x.txt': { Content: 'aGk=', ModifiedAt: '2024-01-01T00:00:00Z' } },
        RedactedValues: { Secret: 'REDACTED' },
      }));
    });
    await new Promise<void>((r) => goStyle.listen(0, '127.0.0.1', r));
    try {
      const client = make({ frontendUrl: `http://127.0.0.1:${(goStyle.address() as AddressInfo).port}` });
      assert.deepEqual(await client.heartbeat(['7', '8']), { knownIds: ['7', '8'], cancelIds: ['8'] });
      const job = (await client.dequeue())!;
      assert.equal(job.id, 71);
      assert.equal(job.token, 'tok-71');
      assert.equal(job.repositoryName, 'github.com/a/b');
      assert.equal(job.fetchTags, true);
      assert.equal(job.dockerSteps?.[0]?.image, 'alpine');
      assert.deepEqual(job.dockerSteps?.[0]?.commands, ['echo hi']);
      assert.equal(job.dockerSteps?.[0]?.dir, 'sub');
      // Record keys are data, not field names: kept as sent, their values normalized.
      assert.equal(job.files?.['x.txt']?.content, 'aGk=');
      assert.deepEqual(job.redactedValues, { Secret: 'REDACTED' });
    } finally {
      goStyle.closeAllConnections();
      await new Promise<void>((r) => goStyle.close(() => r()));
    }
  });

  it('long-polls only when the instance offers it, and reads extensions from any answer', async () => {
    const client = make();
    await client.ping();
    assert.equal(client.supports('long-poll'), false);
    await client.dequeue({ waitSeconds: 5 });
    assert.equal(instance.requests.at(-1)!.headers['x-sandfleet-dequeue-wait'], undefined, 'never assume an extension');

    instance.extensions = ['long-poll', 'log-append'];
    try {
      await client.ping();
      assert.deepEqual([...client.extensions].sort(), ['log-append', 'long-poll']);
      const started = Date.now();
      setTimeout(() => instance.enqueue({ id: 77 }), 300);
      const job = await client.dequeue({ waitSeconds: 5 });
      assert.equal(job?.id, 77);
      assert.ok(Date.now() - started >= 250, 'the instance held the request until a job arrived');
      assert.equal(instance.requestsTo('/dequeue').at(-1)!.headers['x-sandfleet-dequeue-wait'], '5');
    } finally {
      instance.extensions = [];
    }
  });

  it('fetches workspace files with the job headers', async () => {
    instance.files.set('batch-changes/spec/file', Buffer.from('file body'));
    const client = make();
    const job = { id: 5, token: 'tok', queue: 'batches' };
    const stream = await client.getFile(job, 'batch-changes', 'spec/file');
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'file body');
    assert.equal(instance.requests.at(-1)!.headers.authorization, 'Bearer tok');
    assert.equal(await client.fileExists(job, 'batch-changes', 'spec/file'), true);
    assert.equal(await client.fileExists(job, 'batch-changes', 'spec/missing'), false);
    await assert.rejects(client.getFile(job, 'batch-changes', 'spec/missing'), /unexpected status code 404/);
  });

  it('retries log and mark calls with backoff when the instance cannot be reached, then gives up', async () => {
    // A port that accepted once and is now closed: connection refused.
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const retries: number[] = [];
    const client = make({ frontendUrl: `http://127.0.0.1:${port}`, retryAttempts: 3, retryBaseDelayMs: 10, onRetry: ({ attempt }) => retries.push(attempt) });
    await assert.rejects(client.markComplete({ id: 1, token: 't', queue: 'codeintel' }), (err: unknown) =>
      err instanceof CoordinatorUnreachableError && err.name === 'CoordinatorUnreachableError');
    assert.deepEqual(retries, [1, 2]);
    // dequeue and heartbeat are not retried here: the agent loop polls again anyway.
    retries.length = 0;
    await assert.rejects(client.heartbeat([]), CoordinatorUnreachableError);
    assert.deepEqual(retries, []);
  });

  it('recovers when a retried call reaches the instance', async () => {
    let attempts = 0;
    // The first connection is dropped without an answer; the second one is forwarded to the instance.
    const flaky = http.createServer((req, res) => {
      attempts++;
      if (attempts === 1) return void req.socket.destroy();
      const upstream = http.request(`${instance.url}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 500, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    try {
      const client = make({ frontendUrl: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`, retryBaseDelayMs: 10 });
      await client.markComplete({ id: 55, token: 't', queue: 'codeintel' });
      assert.equal(attempts, 2);
      assert.ok(instance.marks.some((m) => m.op === 'markComplete' && m.jobId === 55));
    } finally {
      flaky.closeAllConnections();
      await new Promise<void>((r) => flaky.close(() => r()));
    }
  });

  it('rejects a frontend URL without a scheme when built', () => {
    assert.throws(() => make({ frontendUrl: ':foo' }), /missing protocol scheme/);
  });
});
