import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { createGitRepository, jobHeaders } from '@sandfleet/test-helpers';

const json = (res: Response): Promise<any> => res.json();

for (const backend of testBackends()) {
  describe(`executor API contract (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());

    const heartbeat = (name: string, queue = 'batches', jobIds: number[] = []) =>
      t.executor('POST', `/.executors/queue/${queue}/heartbeat`, { executorName: name, version: 'V2', jobIds });
    const enqueue = async (queue = 'batches', extra: Record<string, unknown> = {}) => {
      const res = await t.admin('POST', '/api/jobs', { queue, dockerSteps: [{ image: 'x', commands: ['true'] }], ...extra });
      assert.equal(res.status, 201, await res.clone().text());
      return (await json(res)) as { id: number };
    };
    const dequeue = async (name: string, queue = 'batches', version = '5.3.0') => {
      const res = await t.executor('POST', `/.executors/queue/${queue}/dequeue`, { executorName: name, version });
      return { status: res.status, job: res.status === 200 ? ((await json(res)) as { id: number; token: string; version?: number; files: Record<string, { content: string }> }) : undefined };
    };

    it('answers test/auth only to the shared secret, with Sourcegraph-shaped errors', async () => {
      assert.equal(await (await t.executor('GET', '/.executors/test/auth')).text(), 'ok');
      const wrong = await t.request('GET', '/.executors/test/auth', { headers: { Authorization: 'token-executor wrong-secret' } });
      assert.equal(wrong.status, 401);
      assert.equal(await wrong.text(), '');
      const missing = await t.request('GET', '/.executors/test/auth');
      assert.equal(missing.status, 401);
      assert.match(await missing.text(), /^no token value in the HTTP Authorization request header/);
      const scheme = await t.request('GET', '/.executors/test/auth', { headers: { Authorization: 'Bearer abc' } });
      assert.equal(scheme.status, 401);
      assert.match(await scheme.text(), /unrecognized HTTP Authorization request header scheme/);
      const shape = await t.request('GET', '/.executors/test/auth', { headers: { Authorization: 'token-executor a b' } });
      assert.equal(shape.status, 401);
      assert.match(await shape.text(), /must be of the following form/);
    });

    it('answers 204 when there is no job and 500 for an empty executor name', async () => {
      assert.equal((await dequeue('idle-executor', 'codeintel')).status, 204);
      const res = await t.executor('POST', '/.executors/queue/codeintel/dequeue', { executorName: '' });
      assert.equal(res.status, 500);
      assert.deepEqual(await json(res), { error: 'worker hostname cannot be empty' });
      assert.equal((await t.executor('POST', '/.executors/queue/nosuchqueue/dequeue', { executorName: 'x' })).status, 404);
    });

    it('sends the v1 payload to old executors and v2 (base64 files) to new ones', async () => {
      await enqueue('batches', { files: { 'a.txt': { content: 'plain text' } } });
      await enqueue('batches', { files: { 'a.txt': { content: 'plain text' } } });
      const old = await dequeue('old-executor', 'batches', '');
      assert.equal(old.job!.version, undefined);
      assert.equal(old.job!.files['a.txt']!.content, 'plain text');
      const fresh = await dequeue('new-executor', 'batches', '5.3.0');
      assert.equal(fresh.job!.version, 2);
      assert.equal(fresh.job!.files['a.txt']!.content, Buffer.from('plain text').toString('base64'));
      const bad = await t.executor('POST', '/.executors/queue/batches/dequeue', { executorName: 'x', version: 'not-a-version' });
      assert.equal(bad.status, 500);
      assert.match((await json(bad)).error, /Invalid Semantic Version/);
    });

    it('refuses a job token used for another job, queue or executor', async () => {
      await heartbeat('owner-a');
      await enqueue('codeintel');
      await enqueue('codeintel');
      const a = (await dequeue('owner-a', 'codeintel')).job!;
      const b = (await dequeue('owner-a', 'codeintel')).job!;
      const entry = { executorName: 'owner-a', key: 'k', command: [], startTime: new Date().toISOString() };
      // A's token with B's job id.
      const cross = await t.request('POST', '/.executors/queue/codeintel/addExecutionLogEntry', {
        body: { ...entry, jobId: b.id },
        headers: { ...jobHeaders(a, 'owner-a'), 'X-Sourcegraph-Job-ID': String(b.id) },
      });
      assert.equal(cross.status, 403);
      assert.equal(await cross.text(), 'invalid token\n');
      // A's token, header for A, body naming B.
      const bodyMismatch = await t.request('POST', '/.executors/queue/codeintel/addExecutionLogEntry', { body: { ...entry, jobId: b.id }, headers: jobHeaders(a, 'owner-a') });
      assert.equal(bodyMismatch.status, 403);
      // The right job on the wrong queue route.
      const wrongQueue = await t.request('POST', '/.executors/queue/batches/addExecutionLogEntry', { body: { ...entry, jobId: a.id }, headers: jobHeaders(a, 'owner-a') });
      assert.equal(wrongQueue.status, 403);
      // An executor name that never heartbeated.
      const unknownExecutor = await t.request('POST', '/.executors/queue/codeintel/addExecutionLogEntry', { body: { ...entry, jobId: a.id, executorName: 'ghost' }, headers: jobHeaders(a, 'ghost') });
      assert.equal(unknownExecutor.status, 401);
      // A made-up token.
      const forged = await t.request('POST', '/.executors/queue/codeintel/addExecutionLogEntry', { body: { ...entry, jobId: a.id }, headers: jobHeaders({ id: a.id, token: 'f'.repeat(40) }, 'owner-a') });
      assert.equal(forged.status, 401);
      assert.equal(await forged.text(), 'invalid token\n');
      // Missing and malformed job id headers.
      const noId = await t.request('POST', '/.executors/queue/codeintel/markComplete', { body: { executorName: 'owner-a', jobId: a.id }, headers: { Authorization: `Bearer ${a.token}`, 'X-Sourcegraph-Executor-Name': 'owner-a' } });
      assert.equal(noId.status, 400);
      assert.equal(await noId.text(), "job ID not provided in header 'X-Sourcegraph-Job-ID'\n");
      const badId = await t.request('POST', '/.executors/queue/codeintel/markComplete', { body: {}, headers: { ...jobHeaders(a, 'owner-a'), 'X-Sourcegraph-Job-ID': 'abc' } });
      assert.equal(badId.status, 400);
      assert.match(await badId.text(), /strconv.Atoi: parsing "abc": invalid syntax/);

      // The right token works: add an entry (returns its 1-based index), then complete.
      const ok = await t.request('POST', '/.executors/queue/codeintel/addExecutionLogEntry', { body: { ...entry, jobId: a.id }, headers: jobHeaders(a, 'owner-a') });
      assert.equal(ok.status, 200);
      assert.equal(await json(ok), 1);
      const done = await t.request('POST', '/.executors/queue/codeintel/markComplete', { body: { executorName: 'owner-a', jobId: a.id }, headers: jobHeaders(a, 'owner-a') });
      assert.equal(done.status, 204);
      // The token is gone after the final mark.
      const again = await t.request('POST', '/.executors/queue/codeintel/markComplete', { body: { executorName: 'owner-a', jobId: a.id }, headers: jobHeaders(a, 'owner-a') });
      assert.equal(again.status, 401);
      // markComplete through the shared secret for a job that is not ours: 404 null.
      const notOwned = await t.executor('POST', '/.executors/queue/codeintel/markComplete', { executorName: 'someone-else', jobId: b.id }, { 'X-Sourcegraph-Job-ID': String(b.id), 'X-Sourcegraph-Executor-Name': 'someone-else' });
      assert.equal(notOwned.status, 404);
      assert.equal(await notOwned.text(), 'null');
    });

    it('answers a repeated addExecutionLogEntry with the same key with the entry it made (log-entry-key)', async () => {
      await heartbeat('keyed-executor');
      await enqueue('batches');
      const job = (await dequeue('keyed-executor', 'batches')).job!;
      const add = (key: string | undefined, out: string) => t.request('POST', '/.executors/queue/batches/addExecutionLogEntry', {
        body: { executorName: 'keyed-executor', jobId: job.id, key: 'step.docker.0', command: ['x'], startTime: new Date().toISOString(), out },
        headers: { ...jobHeaders(job, 'keyed-executor'), ...(key === undefined ? {} : { 'X-Sandfleet-Log-Entry-Key': key }) },
      });
      const first = await add('k'.repeat(22), 'stdout: once\n');
      assert.equal(first.status, 200);
      assert.match(first.headers.get('x-sandfleet-extensions') ?? '', /\blog-entry-key\b/);
      assert.equal(await json(first), 1);
      const repeat = await add('k'.repeat(22), 'stdout: once\n');
      assert.equal(await json(repeat), 1, 'the same key names the same entry');
      assert.equal(await json(await add('m'.repeat(22), 'stdout: other\n')), 2, 'another key is another entry');
      // Without the key (a Sourcegraph executor) every add is a new entry, as before.
      assert.equal(await json(await add(undefined, 'stdout: plain\n')), 3);
      assert.equal(await json(await add(undefined, 'stdout: plain\n')), 4);
      const bad = await add('short', 'x');
      assert.equal(bad.status, 400);
      assert.match((await json(bad)).error, /X-Sandfleet-Log-Entry-Key must be 16 to 64 characters/);
      const view = await json(await t.admin('GET', `/api/jobs/${job.id}`));
      assert.deepEqual(view.executionLogs.map((e: { out: string }) => e.out), ['stdout: once\n', 'stdout: other\n', 'stdout: plain\n', 'stdout: plain\n']);
    });

    it('serves the git proxy only to a job token of that repository', async () => {
      const repoA = createGitRepository({ 'a.txt': 'a' });
      const repoB = createGitRepository({ 'b.txt': 'b' });
      for (const [name, source] of [['example.com/a', repoA.path], ['example.com/b', repoB.path]] as const) {
        assert.equal((await t.admin('POST', '/api/repositories', { name, source })).status, 201);
      }
      await heartbeat('git-executor', 'batches');
      await enqueue('batches', { repositoryName: 'example.com/a', commit: repoA.commit });
      const job = (await dequeue('git-executor', 'batches')).job!;
      const refs = (repo: string, token = job.token) =>
        t.request('GET', `/.executors/git/${repo}/info/refs?service=git-upload-pack`, { headers: jobHeaders({ id: job.id, token }, 'git-executor') });
      const own = await refs('example.com/a');
      assert.equal(own.status, 200);
      assert.equal(own.headers.get('content-type'), 'application/x-git-upload-pack-advertisement');
      assert.match(await own.text(), new RegExp(repoA.commit));
      const other = await refs('example.com/b');
      assert.equal(other.status, 403);
      assert.equal(await other.text(), 'invalid token\n');
      assert.equal((await refs('example.com/a', 'f'.repeat(40))).status, 401);
      const noAuth = await t.request('GET', '/.executors/git/example.com/a/info/refs?service=git-upload-pack');
      assert.equal(noAuth.status, 401);
    });

    it('rejects malformed JSON, wrong types and oversized bodies with a 4xx and a message', async () => {
      const malformed = await t.request('POST', '/.executors/queue/batches/dequeue', { raw: '{"executorName":', headers: { Authorization: `token-executor ${ACCESS_TOKEN}` } });
      assert.equal(malformed.status, 400);
      assert.match(await malformed.text(), /^Failed to unmarshal payload: /);
      const wrongType = await t.executor('POST', '/.executors/queue/batches/heartbeat', { executorName: 'x', jobIds: 'not-a-list' });
      assert.equal(wrongType.status, 400);
      assert.match(await wrongType.text(), /jobIds/);
      const huge = await t.request('POST', '/.executors/queue/batches/dequeue', {
        raw: JSON.stringify({ executorName: 'x', padding: 'a'.repeat(t.config.maxBodyBytes + 10) }),
        headers: { Authorization: `token-executor ${ACCESS_TOKEN}` },
      });
      assert.equal(huge.status, 413);
      assert.match((await json(huge)).error, /larger than/);
      const userBad = await t.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: 'nope' });
      assert.equal(userBad.status, 400);
      assert.match((await json(userBad)).error, /dockerSteps/);
      const unknownField = await t.admin('POST', '/api/jobs', { queue: 'batches', surprise: 1 });
      assert.equal(unknownField.status, 400);
      const unknownQueue = await t.admin('POST', '/api/jobs', { queue: 'nope' });
      assert.equal(unknownQueue.status, 400);
    });

    it('refuses file paths that leave the workspace', async () => {
      for (const p of ['../../etc/passwd', '/etc/passwd', 'a/../../b', '..']) {
        const res = await t.admin('POST', '/api/jobs', { queue: 'batches', files: { [p]: { content: 'x' } } });
        assert.equal(res.status, 400, p);
        assert.match((await json(res)).error, /inside the workspace/);
      }
      const stepDir = await t.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: [], dir: '../..' }] });
      assert.equal(stepDir.status, 400);
    });

    it('reports known and canceled jobs in heartbeats, single and multi queue', async () => {
      await heartbeat('hb-executor', 'batches');
      const { id } = await enqueue('batches');
      const job = (await dequeue('hb-executor', 'batches')).job!;
      assert.equal(job.id, id);
      let res = await heartbeat('hb-executor', 'batches', [id, 999_999]);
      assert.deepEqual(await json(res), { knownIds: [String(id)], cancelIds: [] });
      assert.equal((await t.admin('POST', `/api/jobs/${id}/cancel`)).status, 200);
      res = await heartbeat('hb-executor', 'batches', [id]);
      assert.deepEqual(await json(res), { knownIds: [String(id)], cancelIds: [String(id)] });
      const multi = await t.executor('POST', '/.executors/queue/heartbeat', {
        executorName: 'hb-executor',
        queueNames: ['batches', 'codeintel'],
        jobIdsByQueue: [{ queueName: 'batches', jobIds: [String(id)] }],
      });
      assert.deepEqual(await json(multi), { knownIds: [`${id}-batches`], cancelIds: [`${id}-batches`] });
      const noQueues = await t.executor('POST', '/.executors/queue/heartbeat', { executorName: 'hb-executor' });
      assert.equal(noQueues.status, 500);
      assert.deepEqual(await json(noQueues), { error: 'queueNames must be set for multi-queue heartbeats' });
      // markFailed after a cancel request ends in `canceled`.
      const failed = await t.request('POST', '/.executors/queue/batches/markFailed', { body: { executorName: 'hb-executor', jobId: id, errorMessage: 'canceled' }, headers: jobHeaders(job, 'hb-executor') });
      assert.equal(failed.status, 204);
      const shown = await json(await t.admin('GET', `/api/jobs/${id}`));
      assert.equal(shown.state, 'canceled');
    });

    it('lists heartbeating executors with their telemetry as active', async () => {
      await t.executor('POST', '/.executors/queue/heartbeat', {
        executorName: 'listed-executor',
        queueNames: ['batches', 'codeintel'],
        os: 'linux',
        architecture: 'amd64',
        executorVersion: '5.3.0+sandfleet.0.1.0',
        gitVersion: '2.39.5',
      });
      const { executors } = await json(await t.admin('GET', '/api/executors'));
      const listed = executors.find((e: { hostname: string }) => e.hostname === 'listed-executor');
      assert.deepEqual(
        { queueNames: listed.queueNames, os: listed.os, executorVersion: listed.executorVersion, gitVersion: listed.gitVersion, active: listed.active },
        { queueNames: ['batches', 'codeintel'], os: 'linux', executorVersion: '5.3.0+sandfleet.0.1.0', gitVersion: '2.39.5', active: true },
      );
      assert.equal((await t.request('GET', '/api/executors')).status, 401);
    });

    it('multi-queue dequeue sets the queue and rejects unknown queue names', async () => {
      await enqueue('codeintel');
      const res = await t.executor('POST', '/.executors/queue/dequeue', { executorName: 'multi', version: '5.3.0', queues: ['batches', 'codeintel'] });
      assert.equal(res.status, 200);
      const job = await json(res);
      assert.equal(job.queue, 'codeintel');
      const bad = await t.executor('POST', '/.executors/queue/dequeue', { executorName: 'multi', queues: ['batches', 'bogus'] });
      assert.equal(bad.status, 500);
      assert.match((await json(bad)).error, /Invalid queue name\(s\) 'bogus' found/);
      assert.equal((await t.executor('POST', '/.executors/queue/dequeue', { executorName: 'multi', queues: [] })).status, 204);
    });

    it('holds a long-poll dequeue open and answers soon after an enqueue', async () => {
      const pending = t.executor('POST', '/.executors/queue/codeintel/dequeue', { executorName: 'long-poller', version: '5.3.0' }, { 'X-Sandfleet-Dequeue-Wait': '10' });
      await new Promise((r) => setTimeout(r, 300));
      const { id } = await enqueue('codeintel');
      const res = await pending;
      assert.equal(res.status, 200);
      assert.equal((await json(res)).id, id);
      assert.match(res.headers.get('X-Sandfleet-Extensions') ?? '', /long-poll/);
    });
  });
}

describe('executor API without executors.accessToken', () => {
  it('answers 500 "Executors are not configured on this instance"', async () => {
    const t = await createTestApp('pglite', { executorAccessToken: undefined });
    try {
      const res = await t.executor('GET', '/.executors/test/auth');
      assert.equal(res.status, 500);
      assert.equal(await res.text(), 'Executors are not configured on this instance\n');
    } finally {
      await t.close();
    }
  });
});
