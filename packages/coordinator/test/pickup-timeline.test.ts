import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { AttemptTimelineFacts } from '@sandfleet/db';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { executorClient, prometheusSample } from '@sandfleet/test-helpers';
import { pickupStages } from '../src/jobs/pickup-timeline.js';
import { PICKUP_TIMELINE_METRICS } from '../src/metrics.js';

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
const iso = (ms: number) => at(ms).toISOString();

function facts(over: Partial<AttemptTimelineFacts>): AttemptTimelineFacts {
  return { queue: 'batches', queuedAt: at(0), dequeuedAt: at(100), finishedAt: at(1000), sandboxEntry: null, firstEntryStartTime: null, firstStepStartTime: null, ...over };
}

describe('pickupStages', () => {
  it('ends the sandbox stage with the setup.<runtime>.start entry and the workspace stage at the first step', () => {
    const stages = pickupStages(facts({ sandboxEntry: { startTime: iso(120), durationMs: 80 }, firstEntryStartTime: iso(120), firstStepStartTime: iso(450) }));
    assert.deepEqual(stages, { queued: 0.1, sandbox: 0.1, workspace: 0.25, steps: 0.55, total: 1 });
  });

  it('without a sandbox entry, takes the first entry as the moment the executor began the job', () => {
    const stages = pickupStages(facts({ firstEntryStartTime: iso(130), firstStepStartTime: iso(130) }));
    assert.deepEqual(stages, { queued: 0.1, sandbox: 0.03, workspace: 0, steps: 0.87, total: 1 });
  });

  it('clamps a skewed executor clock between its neighbours: no stage is negative, the stages add up to the total', () => {
    const behind = pickupStages(facts({ sandboxEntry: { startTime: iso(-5000), durationMs: 10 }, firstStepStartTime: iso(-4000) }))!;
    assert.deepEqual(behind, { queued: 0.1, sandbox: 0, workspace: 0, steps: 0.9, total: 1 });
    const ahead = pickupStages(facts({ firstEntryStartTime: iso(60_000), firstStepStartTime: iso(50_000) }))!;
    assert.deepEqual(ahead, { queued: 0.1, sandbox: 0.9, workspace: 0, steps: 0, total: 1 });
  });

  it('leaves out the stages next to a point the entries do not give', () => {
    // Failed while cloning: no step ever started.
    assert.deepEqual(pickupStages(facts({ firstEntryStartTime: iso(200) })), { queued: 0.1, sandbox: 0.1, total: 1 });
    // A sandbox start that never finished, and a start time that is not a time.
    assert.deepEqual(pickupStages(facts({ sandboxEntry: { startTime: iso(200), durationMs: null }, firstStepStartTime: 'yesterday' })), { queued: 0.1, total: 1 });
    assert.equal(pickupStages(facts({ finishedAt: null })), undefined);
  });
});

for (const backend of testBackends()) {
  describe(`pickup timeline histograms from a Sourcegraph-shaped executor (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => t?.close());

    const count = (text: string, metric: string) => prometheusSample(text, `${metric}_count`, { queue: 'codeintel' }) ?? 0;
    const sum = (text: string, metric: string) => prometheusSample(text, `${metric}_sum`, { queue: 'codeintel' }) ?? 0;

    it('reads the sandbox and first-step points from the log entries a Firecracker executor sends (clone before the VM)', async () => {
      const client = executorClient(t.send, 'sg-executor', ACCESS_TOKEN);
      assert.equal((await client.heartbeat('codeintel')).status, 200);
      const created = await t.admin('POST', '/api/jobs', { queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['true'] }] });
      assert.equal(created.status, 201);
      const { body: job } = await client.dequeue('codeintel');
      const began = Date.now();
      const entry = async (key: string, offsetMs: number, durationMs: number) => {
        const answer = await client.jobCall('codeintel', 'addExecutionLogEntry', job, { key, command: [], startTime: new Date(began + offsetMs).toISOString(), exitCode: 0, durationMs, out: '' });
        assert.equal(answer.status, 200, answer.text);
      };
      await entry('setup.git.init', 0, 5);
      await entry('setup.firecracker.start', 10, 30);
      await entry('step.docker.0', 60, 20);
      await sleep(150); // every entry's time lies before the final mark
      assert.equal((await client.jobCall('codeintel', 'markComplete', job, {})).status, 204);

      const stored = (await (await t.admin('GET', `/api/jobs/${job.id}`)).json()) as { queuedAt: string; startedAt: string; finishedAt: string };
      const queuedAt = Date.parse(stored.queuedAt);
      const dequeuedAt = Date.parse(stored.startedAt);
      const finishedAt = Date.parse(stored.finishedAt);
      const text = await (await t.request('GET', '/metrics')).text();
      for (const metric of Object.values(PICKUP_TIMELINE_METRICS)) assert.equal(count(text, metric), 1, metric);
      const near = (actual: number, expectedMs: number, what: string) => assert.ok(Math.abs(actual * 1000 - expectedMs) < 2, `${what}: ${actual * 1000} ms, expected ${expectedMs}`);
      near(sum(text, PICKUP_TIMELINE_METRICS.queued), dequeuedAt - queuedAt, 'queued');
      near(sum(text, PICKUP_TIMELINE_METRICS.sandbox), began + 40 - dequeuedAt, 'sandbox');
      near(sum(text, PICKUP_TIMELINE_METRICS.workspace), 20, 'workspace');
      near(sum(text, PICKUP_TIMELINE_METRICS.steps), finishedAt - (began + 60), 'steps');
      near(sum(text, PICKUP_TIMELINE_METRICS.total), finishedAt - queuedAt, 'total');
    });

    it('observes only the queue wait and the total for an attempt without log entries, and nothing for a refused mark', async () => {
      const before = await (await t.request('GET', '/metrics')).text();
      const client = executorClient(t.send, 'quiet-executor', ACCESS_TOKEN);
      assert.equal((await client.heartbeat('codeintel')).status, 200);
      assert.equal((await t.admin('POST', '/api/jobs', { queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['true'] }] })).status, 201);
      const { body: job } = await client.dequeue('codeintel');
      assert.equal((await client.jobCall('codeintel', 'markErrored', job, { errorMessage: 'boom' })).status, 204);
      // A second mark is refused (the token went with the first): no second observation.
      assert.equal((await client.jobCall('codeintel', 'markComplete', job, {})).status, 401);
      const text = await (await t.request('GET', '/metrics')).text();
      const added = (metric: string) => count(text, metric) - count(before, metric);
      assert.equal(added(PICKUP_TIMELINE_METRICS.queued), 1);
      assert.equal(added(PICKUP_TIMELINE_METRICS.total), 1);
      assert.equal(added(PICKUP_TIMELINE_METRICS.sandbox), 0);
      assert.equal(added(PICKUP_TIMELINE_METRICS.workspace), 0);
      assert.equal(added(PICKUP_TIMELINE_METRICS.steps), 0);
    });
  });
}
