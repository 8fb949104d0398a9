import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basicEnv, makeTempDir, removeTempDir, spawnProcess } from '@sandfleet/test-helpers';
import { ADMIN_TOKEN, SANDFLEET_BIN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { testBackends } from '@sandfleet/test-helpers/db';

const backend = testBackends()[0]!;
/** Small, so a handful of jobs takes several requests. */
const MAX_BATCH_JOBS = 3;
const spec = (queue: string, n: number) => JSON.stringify({ queue, cliSteps: [{ key: `line-${n}`, command: ['echo', String(n)] }] });

describe(`sandfleet jobs submit --batch (${backend})`, () => {
  let coordinator: CoordinatorServer;
  let dir: string;
  before(async () => {
    coordinator = await startCoordinatorServer(backend, { SANDFLEET_MAX_BATCH_JOBS: String(MAX_BATCH_JOBS) }, { 'sandfleet.queues': [{ name: 'cli-bulk' }] });
    dir = makeTempDir('sandfleet-cli-batch-');
  });
  after(async () => {
    await coordinator?.close();
    removeTempDir(dir);
  });

  // Asynchronously: the coordinator answering the CLI runs in this process.
  const cli = async (...args: string[]) => {
    const child = spawnProcess(process.execPath, [SANDFLEET_BIN, ...args], basicEnv({ SANDFLEET_URL: coordinator.url, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN }));
    const status = await child.exit;
    const output = child.output();
    return { status, output, ids: output.split('\n').filter((l) => /^\d+$/.test(l)).map(Number) };
  };
  const file = (name: string, lines: string[]) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, lines.join('\n') + '\n');
    return p;
  };
  const stepKey = async (id: number) => ((await coordinator.admin('GET', `/api/jobs/${id}`)) as { spec: { cliSteps: { key: string }[] } }).spec.cliSteps[0]!.key;

  it('submits every line in chunks the coordinator takes and prints the ids in order; --queue overrides each line', async () => {
    const lines = [spec('batches', 1), '', spec('batches', 3), spec('batches', 4), spec('batches', 5), spec('batches', 6), spec('batches', 7), spec('batches', 8)];
    const submitted = await cli('jobs', 'submit', '--batch', file('jobs.ndjson', lines), '--queue', 'cli-bulk');
    assert.equal(submitted.status, 0, submitted.output);
    assert.equal(submitted.ids.length, 7, submitted.output);
    assert.match(submitted.output, /submitted 7 jobs in/);
    assert.deepEqual(submitted.ids, [...submitted.ids].sort((a, b) => a - b));
    assert.deepEqual(await Promise.all(submitted.ids.map(stepKey)), ['line-1', 'line-3', 'line-4', 'line-5', 'line-6', 'line-7', 'line-8']);
    const { queues } = (await coordinator.admin('GET', '/api/queues')) as { queues: { name: string; counts: { queued: number } }[] };
    assert.equal(queues.find((q) => q.name === 'cli-bulk')!.counts.queued, 7);
  });

  it('stops at a refused chunk, naming the input line and what was already queued', async () => {
    const lines = [spec('batches', 1), spec('batches', 2), spec('batches', 3), spec('batches', 4), spec('nowhere', 5), spec('batches', 6)];
    const refused = await cli('jobs', 'submit', '--batch', file('bad.ndjson', lines));
    assert.equal(refused.status, 1, refused.output);
    assert.match(refused.output, /line 5: queue: unknown queue "nowhere".*the 3 jobs before it were queued/);
    assert.equal(refused.ids.length, 3, 'the first chunk was queued and printed');
    assert.deepEqual(await Promise.all(refused.ids.map(stepKey)), ['line-1', 'line-2', 'line-3']);

    const usage = await cli('jobs', 'submit', 'job.json', '--batch', file('any.ndjson', [spec('batches', 1)]));
    assert.equal(usage.status, 1);
    assert.match(usage.output, /--batch takes no <file>/);
    const single = await cli('jobs', 'submit', file('one.json', [spec('batches', 9)]));
    assert.equal(single.status, 0, single.output);
    assert.match(single.output, /submitted job \d+ to queue batches/);
  });
});
