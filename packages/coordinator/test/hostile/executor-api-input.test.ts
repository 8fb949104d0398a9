import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { jobStateCounts } from '@sandfleet/db';
import { MAX_DEQUEUE_JOBS, MAX_JOBS_HEADER } from '@sandfleet/protocol';
import { jobHeaders } from '@sandfleet/test-helpers';

const QUEUE = 'batches';
const route = (op: string) => `/.executors/queue/${QUEUE}/${op}`;
/** Words of PostgreSQL errors: none may reach a client. */
const DATABASE_TEXT = /integer out of range|invalid input syntax|invalid byte sequence|unsupported Unicode|violates|SQL|syntax error/i;

for (const backend of testBackends()) {
  describe(`executor and user API against out-of-range and malformed input (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());

    async function runningJob(executorName: string) {
      await t.executor('POST', route('heartbeat'), { executorName, version: 'V2', jobIds: [] });
      const submitted = await t.admin('POST', '/api/jobs', { queue: QUEUE, dockerSteps: [{ image: 'x', commands: ['true'] }] });
      assert.equal(submitted.status, 201, await submitted.clone().text());
      const res = await t.executor('POST', route('dequeue'), { executorName, version: '5.3.0' });
      assert.equal(res.status, 200);
      const job = (await res.json()) as { id: number; token: string };
      const send = (op: string, body: Record<string, unknown>, headers = jobHeaders(job, executorName)) =>
        t.request('POST', route(op), { body: { executorName, jobId: job.id, ...body }, headers });
      const entryRes = await send('addExecutionLogEntry', { key: 'step', command: ['sh'], startTime: new Date().toISOString() });
      assert.equal(entryRes.status, 200);
      return { job, send, entryId: (await entryRes.json()) as number };
    }

    async function refused(res: Response, status: number, field: RegExp) {
      const text = await res.text();
      assert.equal(res.status, status, text);
      assert.match(text, field);
      assert.doesNotMatch(text, DATABASE_TEXT);
    }

    it('answers 400 naming the field for numbers past what the database stores', async () => {
      const { job, send, entryId } = await runningJob('range-executor');
      const big = 2 ** 40;
      await refused(await send('appendExecutionLog', { entryId: big, seq: 0, out: 'x' }), 400, /entryId/);
      await refused(await send('appendExecutionLog', { entryId, seq: big, out: 'x' }), 400, /seq/);
      await refused(await send('appendExecutionLog', { entryId, seq: 0, out: 'x', exitCode: big }), 400, /exitCode/);
      await refused(await send('updateExecutionLogEntry', { entryId: -big, key: 'k', command: [], startTime: '' }), 400, /entryId/);
      await refused(await send('addExecutionLogEntry', { key: 'k', command: [], startTime: '', exitCode: -big }), 400, /exitCode/);
      await refused(await send('markComplete', { jobId: 2 ** 70 }), 400, /jobId/);
      // A header past bigint, and one in hex.
      for (const header of ['99999999999999999999999', '0x10']) {
        await refused(await send('appendExecutionLog', { entryId, seq: 0, out: 'x' }, { ...jobHeaders(job, 'range-executor'), 'X-Sourcegraph-Job-ID': header }), 400, /Job ID/);
      }
      // A long duration is stored (clamped), not refused.
      const long = await send('appendExecutionLog', { entryId, seq: 0, out: 'done\n', exitCode: 0, durationMs: 2 ** 45 });
      assert.equal(long.status, 204, await long.text());
      const shown: any = await (await t.admin('GET', `/api/jobs/${job.id}`)).json();
      assert.equal(shown.executionLogs[0].durationMs, 2 ** 31 - 1);
      assert.equal((await t.request('GET', '/healthz')).status, 200);
    });

    it('reads job ids strictly: decimal digits only, within range', async () => {
      const { job } = await runningJob('id-executor');
      const hex = `0x${job.id.toString(16)}`;
      await refused(await t.admin('POST', `/api/jobs/${hex}/cancel`), 400, /decimal id/);
      assert.equal((await (await t.admin('GET', `/api/jobs/${job.id}`)).json() as any).state, 'processing', 'a hex id cancels nothing');
      for (const id of [hex, '1e1', `+${job.id}`, `0${job.id}`, '99999999999999999999', '0', '-1', ' 1']) {
        await refused(await t.admin('GET', `/api/jobs/${encodeURIComponent(id)}`), 400, /decimal id/);
      }
      await refused(await t.admin('GET', '/api/jobs?before=0x10'), 400, /before/);
      await refused(await t.admin('GET', '/api/jobs?limit=0x10'), 400, /limit/);
      const badResume = await t.request('GET', `/api/jobs/${job.id}/logs`, { headers: { Authorization: 'Bearer e2e-admin-token-0123456789', 'Last-Event-ID': 'abc' } });
      await refused(badResume, 400, /Last-Event-ID/);
    });

    it('refuses NUL and lone surrogates in a job spec with a 400', async () => {
      await refused(await t.admin('POST', '/api/jobs', { queue: QUEUE, dockerSteps: [{ image: 'x', commands: ['echo a\u0000b'] }] }), 400, /dockerSteps\.0\.commands\.0.*NUL/);
      const surrogate = await t.request('POST', '/api/jobs', {
        raw: `{"queue":"${QUEUE}","dockerSteps":[{"image":"x","commands":["echo \\ud800"]}]}`,
        headers: { Authorization: 'Bearer e2e-admin-token-0123456789' },
      });
      await refused(surrogate, 400, /surrogate/);
    });

    it('stores NUL in log output and error messages as a visible symbol', async () => {
      const { job, send, entryId } = await runningJob('nul-executor');
      const added = await send('addExecutionLogEntry', { key: 'k\u0000', command: ['a\u0000'], startTime: '', out: 'first\u0000\n' });
      assert.equal(added.status, 200, await added.clone().text());
      const appended = await send('appendExecutionLog', { entryId, seq: 0, out: 'x\u0000y \ud800\n' });
      assert.equal(appended.status, 204, await appended.text());
      const updated = await send('updateExecutionLogEntry', { entryId, key: 'step', command: ['sh'], startTime: '', out: 'x\u0000y \ud800\nmore\u0000\n' });
      assert.equal(updated.status, 204, await updated.text());
      const shown: any = await (await t.admin('GET', `/api/jobs/${job.id}`)).json();
      assert.equal(shown.executionLogs[0].out, 'x\u2400y \ufffd\nmore\u2400\n');
      assert.equal(shown.executionLogs[1].out, 'first\u2400\n');
      assert.equal(shown.executionLogs[1].key, 'k\u2400');
      const failed = await send('markFailed', { errorMessage: 'boom\u0000' });
      assert.equal(failed.status, 204, await failed.text());
      assert.equal((await (await t.admin('GET', `/api/jobs/${job.id}`)).json() as any).failureMessage, 'boom\u2400');
    });

    it('takes the job from the body for the shared secret without a job id header, fenced to its owner', async () => {
      const { job } = await runningJob('old-executor');
      const entry = { key: 'k', command: [], startTime: '', jobId: job.id };
      const own = await t.executor('POST', route('addExecutionLogEntry'), { ...entry, executorName: 'old-executor' });
      assert.equal(own.status, 200, await own.clone().text());
      assert.equal(await own.json(), 2);
      const other = await t.executor('POST', route('addExecutionLogEntry'), { ...entry, executorName: 'another-executor' });
      assert.notEqual(other.status, 200);
      assert.equal((await t.executor('POST', route('markComplete'), { jobId: job.id, executorName: 'another-executor' })).status, 404);
      assert.equal((await t.executor('POST', route('markComplete'), { jobId: job.id, executorName: 'old-executor' })).status, 204);
    });

    it("matches body keys case-insensitively, as Go's decoder does", async () => {
      await t.executor('POST', route('heartbeat'), { ExecutorName: 'go-executor', Version: 'V2', JobIDs: [] });
      const submitted: any = await (await t.admin('POST', '/api/jobs', { queue: QUEUE, dockerSteps: [{ image: 'x', commands: ['true'] }] })).json();
      const dequeued = await t.executor('POST', route('dequeue'), { executorname: 'go-executor', VERSION: '5.3.0' });
      assert.equal(dequeued.status, 200);
      const job = (await dequeued.json()) as { id: number; token: string };
      assert.equal(job.id, submitted.id);
      const beat: any = await (await t.executor('POST', route('heartbeat'), { ExecutorName: 'go-executor', JobIDs: [job.id] })).json();
      assert.deepEqual(beat.knownIds, [String(job.id)]);
      const headers = jobHeaders(job, 'go-executor');
      const logged = await t.request('POST', route('addExecutionLogEntry'), { body: { JobID: job.id, ExecutorName: 'go-executor', Key: 'k', Command: ['a'], StartTime: '' }, headers });
      assert.equal(logged.status, 200, await logged.clone().text());
      // The exact spelling wins over a variant.
      const exact = await t.request('POST', route('appendExecutionLog'), { body: { jobId: job.id, JOBID: 999, EntryID: 1, Seq: 0, Out: 'hi\n' }, headers });
      assert.equal(exact.status, 204, await exact.text());
      const shown: any = await (await t.admin('GET', `/api/jobs/${job.id}`)).json();
      assert.equal(shown.executionLogs[0].out, 'hi\n');
      assert.deepEqual(shown.executionLogs[0].command, ['a']);
    });

    it('refuses a malformed multi-job dequeue header without claiming anything, and caps a huge one', async () => {
      const executorName = 'greedy-executor';
      await t.executor('POST', route('heartbeat'), { executorName, version: 'V2', jobIds: [] });
      for (let i = 0; i < MAX_DEQUEUE_JOBS + 3; i++) {
        assert.equal((await t.admin('POST', '/api/jobs', { queue: QUEUE, dockerSteps: [{ image: 'x', commands: ['true'] }] })).status, 201);
      }
      const processingBefore = (await jobStateCounts(t.database.db, { queue: QUEUE })).processing;
      const dequeue = (header: string) => t.executor('POST', route('dequeue'), { executorName, version: '5.3.0' }, { [MAX_JOBS_HEADER]: header });
      for (const header of ['0', '-1', '1e3', '0x10', '2.5', 'all', '99999999999999999999', '4,4']) {
        await refused(await dequeue(header), 400, new RegExp(MAX_JOBS_HEADER));
      }
      const processingAfter = (await jobStateCounts(t.database.db, { queue: QUEUE })).processing;
      assert.equal(processingAfter, processingBefore, 'no malformed request claimed a job');
      const res = await dequeue('999999');
      assert.equal(res.status, 200);
      const jobs = (await res.json()) as unknown[];
      assert.equal(jobs.length, MAX_DEQUEUE_JOBS, 'a huge request gets at most the cap');
      assert.equal((await t.request('GET', '/healthz')).status, 200);
    });
  });
}
