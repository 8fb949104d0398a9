import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { executorClient, prometheusSample } from '@sandfleet/test-helpers';

const sample = prometheusSample;

for (const backend of testBackends()) {
  describe(`executor API request metrics (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());

    const metrics = async () => (await t.request('GET', '/metrics')).text();
    const statements = (text: string, route: string) => sample(text, 'sandfleet_executor_api_db_statements_total', { route, method: 'POST' }) ?? 0;
    const requests = (text: string, route: string, code: string) =>
      sample(text, 'sandfleet_executor_api_request_duration_seconds_count', { route, method: 'POST', code }) ?? 0;

    /** Statements one request to `route` sent, from the counters before and after it. */
    async function statementsOf(route: string, request: () => Promise<unknown>): Promise<number> {
      const before = statements(await metrics(), route);
      await request();
      return statements(await metrics(), route) - before;
    }

    it('times each request by route pattern and status, and counts its database statements', async () => {
      const client = executorClient(t.send, 'metrics-executor', ACCESS_TOKEN);
      assert.equal((await client.heartbeat('batches')).status, 200);
      const created = await t.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['true'] }] });
      assert.equal(created.status, 201);

      const dequeue = '/.executors/queue/:queueName/dequeue';
      let job: any;
      const dequeueStatements = await statementsOf(dequeue, async () => {
        const answer = await client.dequeue('batches');
        assert.equal(answer.status, 200);
        job = answer.body;
      });
      // Only the claim (job row, token and attempt in one statement): the heartbeat before it had
      // the shared secret checked, and the acceptance is remembered.
      assert.equal(dequeueStatements, 1);
      assert.equal((await client.dequeue('batches')).status, 204);

      const logEntry = '/.executors/queue/:queueName/addExecutionLogEntry';
      const logStatements = await statementsOf(logEntry, async () => {
        const answer = await client.jobCall('batches', 'addExecutionLogEntry', job, { key: 'step.0', command: ['true'], startTime: new Date().toISOString(), out: 'hi\n' });
        assert.equal(answer.status, 200, answer.text);
      });
      const complete = '/.executors/queue/:queueName/markComplete';
      const completeStatements = await statementsOf(complete, async () => {
        assert.equal((await client.jobCall('batches', 'markComplete', job, {})).status, 204);
      });
      // The token and its executor in one lookup, the fenced finish, then once the finish committed
      // one statement that notifies the followers and reads the attempt's pickup timeline for its
      // histograms.
      assert.equal(completeStatements, 3);
      const heartbeat = '/.executors/queue/:queueName/heartbeat';
      const heartbeatStatements = await statementsOf(heartbeat, async () => assert.equal((await client.heartbeat('batches', [job.id])).status, 200));

      const text = await metrics();
      assert.equal(requests(text, dequeue, '200'), 1);
      assert.equal(requests(text, dequeue, '204'), 1);
      assert.equal(requests(text, complete, '204'), 1);
      assert.ok(sample(text, 'sandfleet_executor_api_request_duration_seconds_sum', { route: dequeue, method: 'POST', code: '200' })! > 0);
      assert.equal(sample(text, 'sandfleet_executor_api_request_duration_seconds_bucket', { route: complete, method: 'POST', code: '204', le: '+Inf' }), 1);
      // The token lookup, the job's stored log size, then a transaction: BEGIN, the fence, the
      // insert, the ordering update, the notification, COMMIT.
      assert.equal(logStatements, 7);
      // The executor upsert and the job refresh (the secret is remembered).
      assert.equal(heartbeatStatements, 2);
      // Neither job ids nor queue names become labels.
      assert.doesNotMatch(text, new RegExp(`route="[^"]*(batches|${job.id})`));
    });

    it('labels an unknown path by the wildcard that ran, not by the path', async () => {
      const answer = await t.executor('POST', '/.executors/queue/no-such-queue-123/dequeue', { executorName: 'x' });
      assert.equal(answer.status, 404);
      const text = await metrics();
      assert.doesNotMatch(text, /no-such-queue-123/);
    });
  });
}
