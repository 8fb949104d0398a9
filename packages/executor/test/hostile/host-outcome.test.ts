/**
 * A job's secrets must not leave through the executor's own words: the error message of
 * markErrored/markFailed and the executor's log lines get the job's redaction like its step logs.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, CoordinatorClient, connectionOptions, createLogger, loadConfig, ShellRuntime } from '../../src/index.js';
import { makeTempDir, removeTempDir, TestInstance } from '@sandfleet/test-helpers';

const SECRET = 'hunter2-very-secret-value';

describe('outcome messages of a job with secrets', () => {
  let instance: TestInstance;
  let root: string;

  before(async () => {
    instance = await TestInstance.start();
    root = makeTempDir('executor-hostile-outcome-');
  });
  after(async () => {
    await instance.close();
    removeTempDir(root);
  });

  async function runOne(job: Record<string, unknown>) {
    const config = loadConfig({
      EXECUTOR_FRONTEND_URL: instance.url,
      EXECUTOR_FRONTEND_PASSWORD: instance.password,
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_QUEUE_POLL_INTERVAL: '50ms',
      EXECUTOR_RUNTIME: 'shell',
      EXECUTOR_WORKSPACE_DIR: path.join(root, 'workspaces'),
      EXECUTOR_NUM_TOTAL_JOBS: '1',
    });
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
    const client = new CoordinatorClient({ ...connectionOptions(config), retryAttempts: 1, retryBaseDelayMs: 10 });
    instance.enqueue(job);
    await new Agent({ config, client, runtime: new ShellRuntime(), log, pingIntervalMs: 50, logFlushIntervalMs: 50 }).run();
    return { mark: instance.marks.find((m) => m.jobId === job.id)!, lines };
  }

  it('redacts a secret that the failure message quotes (a file path) in the mark and the log', async () => {
    const { mark, lines } = await runOne({
      id: 501,
      // The second file cannot be written below the first: the error quotes its path.
      files: { [SECRET]: { content: 'a file' }, [`${SECRET}/below`]: { content: 'x' } },
      dockerSteps: [{ image: 'x', commands: ['true'] }],
      redactedValues: { [SECRET]: '[REDACTED]' },
    });
    assert.equal(mark.op, 'markErrored');
    assert.ok(mark.errorMessage, 'the mark has a message');
    assert.ok(!mark.errorMessage.includes(SECRET), mark.errorMessage);
    assert.match(mark.errorMessage, /\[REDACTED\]/);
    const leaked = lines.filter((l) => l.includes(SECRET));
    assert.deepEqual(leaked, [], 'no executor log line carries the secret');
    // The instance is unharmed and still answers.
    const ping = await fetch(`${instance.url}/.executors/queue/batches/dequeue`, { method: 'POST' });
    await ping.body?.cancel();
    assert.ok(ping.status > 0);
  });
});
