import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '@sandfleet/coordinator';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { QueuePicker } from '../src/executor-api/queue-picker.js';

let dir: string;
let files = 0;
/** loadConfig with a site config file holding `site` (plus the access token). */
function withSite(site: Record<string, unknown>, env: Record<string, string> = {}) {
  const file = path.join(dir, `site-${++files}.json`);
  fs.writeFileSync(file, JSON.stringify({ 'executors.accessToken': 'a-long-enough-secret-for-executors', ...site }));
  return loadConfig({ dataDir: dir, siteConfig: file }, env);
}
function problemsOf(site: Record<string, unknown>, env: Record<string, string> = {}): string[] {
  try {
    withSite(site, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.replace(/^site config \S+: /, ''));
    throw err;
  }
  return [];
}

describe('queue catalog from the site config', () => {
  before(() => {
    dir = makeTempDir('sandfleet-queue-catalog-');
  });
  after(() => removeTempDir(dir));

  it('has batches and codeintel with Sourcegraph\'s weights and limits when nothing is declared', () => {
    const { queues } = withSite({});
    assert.deepEqual(queues.names, ['batches', 'codeintel']);
    assert.deepEqual([queues.settings.batches!.weight, queues.settings.batches!.dequeueLimit], [4, 50]);
    assert.deepEqual([queues.settings.codeintel!.weight, queues.settings.codeintel!.dequeueLimit], [1, 250]);
    assert.equal(queues.has('docs'), false);
    assert.equal(queues.has('constructor'), false, 'object prototype names are not queues');
  });

  it('adds the declared queues, sorted, with their weight and limit (defaults: weight 1, no limit)', () => {
    const { queues } = withSite({ 'sandfleet.queues': [{ name: 'manuals' }, { name: 'docs', weight: 2, limit: 10 }] }, { SANDFLEET_STALLED_MAX_AGE: '40s', SANDFLEET_MAX_RESETS: '5' });
    assert.deepEqual(queues.names, ['batches', 'codeintel', 'docs', 'manuals']);
    assert.deepEqual(queues.settings.docs, { stalledMaxAgeMs: 40_000, maxResets: 5, maxRetries: 0, weight: 2, dequeueLimit: 10 });
    assert.deepEqual([queues.settings.manuals!.weight, queues.settings.manuals!.dequeueLimit], [1, Number.POSITIVE_INFINITY]);
    assert.equal(queues.nameSchema().safeParse('docs').success, true);
    assert.match(queues.nameSchema().safeParse('nope').error!.issues[0]!.message, /unknown queue: the queues are batches, codeintel, docs, manuals/);
  });

  it("takes batches' and codeintel's weight and limit from executors.multiqueue.dequeueCacheConfig, as Sourcegraph does", () => {
    const { queues } = withSite({ 'executors.multiqueue.dequeueCacheConfig': { batches: { weight: 2 }, codeintel: { limit: 20, weight: 3 } } });
    assert.deepEqual([queues.settings.batches!.weight, queues.settings.batches!.dequeueLimit], [2, 50]);
    assert.deepEqual([queues.settings.codeintel!.weight, queues.settings.codeintel!.dequeueLimit], [3, 20]);
    assert.deepEqual(problemsOf({ 'executors.multiqueue.dequeueCacheConfig': { docs: { weight: 2 }, batches: { limit: 0 } } }), [
      'executors.multiqueue.dequeueCacheConfig.batches.limit: Too small: expected number to be >0',
      'executors.multiqueue.dequeueCacheConfig: Unrecognized key: "docs"',
    ]);
  });

  it('refuses bad declarations, each named', () => {
    assert.deepEqual(problemsOf({ 'sandfleet.queues': [{ name: 'codeintel' }, { name: 'a' }, { name: 'a' }] }), [
      'sandfleet.queues.0.name: "codeintel" always exists and cannot be declared',
      'sandfleet.queues.2.name: "a" is declared twice',
    ]);
    assert.deepEqual(problemsOf({ 'sandfleet.queues': { docs: {} } }), ['sandfleet.queues: Invalid input: expected array, received object']);
    assert.match(problemsOf({ 'sandfleet.queues': [{ name: 'docs', weight: 1.5 }] }).join('\n'), /sandfleet\.queues\.0\.weight: Invalid input: expected int/);
    assert.match(problemsOf({ 'sandfleet.queues': [{ name: 'a/b' }] }).join('\n'), /sandfleet\.queues\.0\.name: a queue name is lowercase letters/);
    assert.match(problemsOf({ 'sandfleet.queues': [{}] }).join('\n'), /sandfleet\.queues\.0\.name: Invalid input: expected string/);
  });

  it('EXECUTOR_ALLOCATIONS may name a declared queue, and only a known one', () => {
    const config = withSite({ 'sandfleet.queues': [{ name: 'docs' }] }, { EXECUTOR_ALLOCATIONS: '{"docs":{"aws":0.5}}' });
    assert.deepEqual(config.metricPublisher.allocations.docs, { aws: 0.5, gcp: 0 });
    assert.deepEqual(config.metricPublisher.allocations.batches, { aws: 1, gcp: 1 });
    assert.deepEqual(problemsOf({}, { EXECUTOR_ALLOCATIONS: '{"docs":{"aws":0.5}}' }), ['EXECUTOR_ALLOCATIONS: unknown queue "docs" (known: batches, codeintel)']);
  });

  it('the multi-queue picker weighs and limits a declared queue as configured', () => {
    const { queues } = withSite({ 'sandfleet.queues': [{ name: 'docs', weight: 3, limit: 2 }] });
    // Weights batches 4, docs 3: a draw below 4/7 picks batches, above picks docs.
    assert.equal(new QueuePicker(queues.settings, () => 0.5).pick(['batches', 'docs']), 'batches');
    assert.equal(new QueuePicker(queues.settings, () => 0.6).pick(['batches', 'docs']), 'docs');
    // After two recent docs dequeues docs is at its limit: batches goes first whatever the draw.
    const picker = new QueuePicker(queues.settings, () => 0.99);
    picker.recordDequeue('docs');
    picker.recordDequeue('docs');
    assert.equal(picker.pick(['batches', 'docs']), 'batches');
    assert.equal(picker.pick(['docs']), 'docs');
  });
});
