import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BUILTIN_QUEUE_NAMES,
  QueueNameSyntax,
  invalidQueueNamesMessage,
  isWellFormedQueueName,
  executorRoutePatterns,
  executorRoutes,
  groupRecordUidsByQueue,
  parseDuration,
  parseDurationMs,
  parseGitPath,
  parseRecordUid,
  parseSize,
  parseSizeBytes,
  recordUid,
  SandfleetError,
  unknownQueueNames,
} from '../src/index.js';

describe('durations', () => {
  it('accepts Go duration syntax', () => {
    const cases: [string, number][] = [
      ['0', 0], ['300ms', 300], ['25s', 25_000], ['1m30s', 90_000], ['2h', 7_200_000], ['1.5s', 1500], ['.5s', 500],
      ['500us', 0.5], ['500µs', 0.5], ['1000000ns', 1], ['+1s', 1000], ['2h45m10s', 9_910_000],
    ];
    for (const [text, ms] of cases) assert.equal(parseDurationMs(text), ms, text);
  });

  it('refuses a bare non-zero number and says to add a unit', () => {
    const result = parseDuration('1500');
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.error : '', /missing unit in duration "1500".*1500s or 1500ms/);
    assert.equal(parseDurationMs('1.5'), undefined);
  });

  it('refuses other text with the syntax hint', () => {
    for (const text of ['', 'soon', '1x', '-1s', 's', '1s2', '1 s']) {
      const result = parseDuration(text);
      assert.deepEqual(result, { ok: false, error: 'not a duration (use Go syntax such as 1s, 250ms, 30m, 1h30m)' }, text);
    }
  });
});

describe('sizes', () => {
  it('reads bare numbers as bytes and every unit as a power of 1024', () => {
    const cases: [string, number][] = [
      ['0', 0], ['1500', 1500], ['512B', 512], ['12G', 12 * 2 ** 30], ['12GB', 12 * 2 ** 30], ['12GiB', 12 * 2 ** 30],
      ['512m', 512 * 2 ** 20], ['64Ki', 64 * 1024], ['1KB', 1024], ['2TiB', 2 * 2 ** 40], ['1.5g', 1.5 * 2 ** 30], ['10 M', 10 * 2 ** 20],
    ];
    for (const [text, bytes] of cases) assert.equal(parseSizeBytes(text), bytes, text);
  });

  it('refuses what is not a size', () => {
    for (const text of ['', 'lots', '12X', '-1G', '1ib', 'G']) {
      assert.deepEqual(parseSize(text), { ok: false, error: 'not a size (use e.g. 12G, 512M, 0)' }, text);
    }
  });
});

describe('record uids', () => {
  it('round-trips single- and multi-queue ids', () => {
    assert.equal(recordUid({ id: 42 }), '42');
    assert.equal(recordUid({ id: 42, queue: 'batches' }), '42-batches');
    assert.deepEqual(parseRecordUid('42'), { id: 42 });
    assert.deepEqual(parseRecordUid('42-batches'), { id: 42, queue: 'batches' });
  });

  it('splits on the first dash and refuses non-numeric ids', () => {
    assert.deepEqual(parseRecordUid('7-my-queue'), { id: 7, queue: 'my-queue' });
    assert.equal(parseRecordUid('abc-batches'), undefined);
    assert.equal(parseRecordUid(''), undefined);
  });

  it('groups uids by queue, queues sorted, uids without a queue left out', () => {
    assert.deepEqual(groupRecordUidsByQueue(['3-codeintel', '1-batches', '5', '2-batches', 'x-batches']), [
      { queueName: 'batches', jobIds: ['1', '2'] },
      { queueName: 'codeintel', jobIds: ['3'] },
    ]);
  });
});

describe('queues', () => {
  it('names the unknown queues in order', () => {
    assert.deepEqual(unknownQueueNames(['batches', 'foo', 'codeintel', 'bar'], BUILTIN_QUEUE_NAMES), ['foo', 'bar']);
    assert.deepEqual(unknownQueueNames(['docs', 'batches'], ['batches', 'codeintel', 'docs']), []);
  });

  it('accepts well-formed names only', () => {
    for (const name of ['codeintel', 'docs', 'a', 'build-2', 'x_y', '9lives']) assert.equal(QueueNameSyntax.safeParse(name).success, true, name);
    for (const name of ['', 'Docs', '-x', '_x', 'a b', 'foo;bar', 'a/b', 'é', 'x'.repeat(64)]) assert.equal(isWellFormedQueueName(name), false, name);
  });

  it("words the unknown-queue error as Sourcegraph does", () => {
    assert.equal(invalidQueueNamesMessage(['foo', 'bar'], BUILTIN_QUEUE_NAMES), "Invalid queue name(s) 'foo, bar' found. Supported queue names are 'batches, codeintel'.");
  });
});

describe('routes', () => {
  it('builds the client paths and the server patterns from the same paths', () => {
    assert.equal(executorRoutes.testAuth, '/.executors/test/auth');
    assert.equal(executorRoutes.multiDequeue, '/.executors/queue/dequeue');
    assert.equal(executorRoutes.queue('batches', 'markComplete'), '/.executors/queue/batches/markComplete');
    assert.equal(executorRoutes.file('batch-changes', 'a/b.txt'), '/.executors/files/batch-changes/a/b.txt');
    assert.equal(executorRoutePatterns.queue('heartbeat', BUILTIN_QUEUE_NAMES), '/queue/:queueName{batches|codeintel}/heartbeat');
    assert.equal(executorRoutePatterns.multiHeartbeat, '/queue/heartbeat');
  });

  it('parses git proxy paths with slashes in the repository name', () => {
    assert.deepEqual(parseGitPath(executorRoutes.gitInfoRefs('github.com/a/b')), { repositoryName: 'github.com/a/b', operation: 'info/refs' });
    assert.deepEqual(parseGitPath(executorRoutes.gitUploadPack('r')), { repositoryName: 'r', operation: 'git-upload-pack' });
    assert.equal(parseGitPath('/.executors/git/r/objects/info'), undefined);
  });
});

describe('SandfleetError', () => {
  class ExampleError extends SandfleetError {}
  it('takes its name from the subclass and is not retryable unless said', () => {
    const plain = new ExampleError('boom');
    assert.equal(plain.name, 'ExampleError');
    assert.equal(plain.retryable, false);
    const cause = new Error('econnrefused');
    const retry = new ExampleError('again', { cause, retryable: true });
    assert.equal(retry.retryable, true);
    assert.equal(retry.cause, cause);
    assert.ok(retry instanceof Error);
  });
});
