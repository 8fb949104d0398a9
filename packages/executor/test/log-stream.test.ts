import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildRedactions, CoordinatorClient, LogFlushError, Redactor, StepLog } from '../src/index.js';
import { TestInstance } from './support/test-instance.js';

const SECRET = 'p4ssw0rd-in-output';

describe('step log entries', () => {
  let instance: TestInstance;
  let client: CoordinatorClient;
  let nextJobId = 1;
  before(async () => {
    instance = await TestInstance.start();
    client = new CoordinatorClient({
      frontendUrl: instance.url,
      frontendPassword: instance.password,
      executorName: 'exec-log',
      queueNames: ['batches'],
      multiQueue: false,
      retryAttempts: 1,
    });
    await client.ping();
  });
  after(() => instance.close());

  const open = (key = 'step.docker.0', command = ['/bin/sh', `echo ${SECRET}`]) => {
    const job = { id: nextJobId++, token: 'tok', queue: 'batches' };
    const redactor = new Redactor(buildRedactions(instance.password, { [SECRET]: '***' }));
    const log = new StepLog({ client, job, key, command, redactor, flushIntervalMs: 20, retry: { baseDelayMs: 5 } });
    return { job, log };
  };
  const entryOf = (jobId: number) => instance.logs.get(jobId)?.[0];

  const feed = (log: StepLog) => {
    log.onStdout(Buffer.from('first line\npartial '));
    log.onStderr(Buffer.from('warning: p4ssw0'));
    log.onStdout(Buffer.from('line done\n'));
    log.onStderr(Buffer.from('rd-in-output leaked?\n'));
    log.onStdout(Buffer.from('no newline at end'));
  };
  const EXPECTED = 'stdout: first line\nstdout: partial line done\nstderr: warning: *** leaked?\nstdout: no newline at end\n';

  it('adds the entry without exit code, updates it while running, and finishes with exitCode and durationMs', async () => {
    const { job, log } = open();
    log.start();
    const added = await instance.waitFor('the entry', () => entryOf(job.id));
    assert.equal(added.exitCode, undefined);
    assert.equal(added.durationMs, undefined);
    assert.deepEqual(added.command, ['/bin/sh', 'echo ***'], 'the command is redacted too');
    assert.match(added.startTime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);

    log.onStdout(Buffer.from('early output\n'));
    await instance.waitFor('an update while running', () => entryOf(job.id)!.updates >= 1 && entryOf(job.id)!.out === 'stdout: early output\n');
    assert.equal(entryOf(job.id)!.exitCode, undefined);
    feed(log);
    await log.finish(3);
    const entry = entryOf(job.id)!;
    assert.equal(entry.out, `stdout: early output\n${EXPECTED}`);
    assert.equal(entry.exitCode, 3);
    assert.equal(typeof entry.durationMs, 'number');
    assert.ok(!JSON.stringify(instance.requests.map((r) => r.body)).includes(SECRET));
  });

  it('appends chunks instead of resending the output when the instance offers log-append', async () => {
    instance.extensions = ['log-append'];
    try {
      await client.ping();
      const { job, log } = open();
      log.start();
      log.onStdout(Buffer.from('one\n'));
      await instance.waitFor('the first chunk', () => entryOf(job.id)?.out === 'stdout: one\n');
      feed(log);
      await log.finish(0);
      const entry = entryOf(job.id)!;
      assert.equal(entry.out, `stdout: one\n${EXPECTED}`);
      assert.equal(entry.exitCode, 0);
      assert.equal(typeof entry.durationMs, 'number');
      assert.equal(entry.updates, 0, 'no updateExecutionLogEntry in append mode');
      assert.deepEqual(entry.appendedSeqs, entry.appendedSeqs.map((_, i) => i), 'seq counts from 0');
      const appends = instance.requestsTo('/appendExecutionLog').filter((r) => r.body.jobId === job.id);
      assert.equal(appends.at(-1)!.body.exitCode, 0);
      assert.ok(appends.slice(0, -1).every((r) => r.body.exitCode === undefined));
    } finally {
      instance.extensions = [];
      await client.ping();
    }
  });

  it('resends a failed chunk with the same seq so nothing is lost or doubled', async () => {
    instance.extensions = ['log-append'];
    try {
      await client.ping();
      const { job, log } = open();
      log.start();
      await instance.waitFor('the entry', () => entryOf(job.id));
      instance.failOperations.set('appendExecutionLog', 503);
      log.onStdout(Buffer.from('during outage\n'));
      await instance.waitFor('a failed append', () => instance.requestsTo('/appendExecutionLog').some((r) => r.body.jobId === job.id));
      instance.failOperations.delete('appendExecutionLog');
      log.onStdout(Buffer.from('after outage\n'));
      await log.finish(0);
      const entry = entryOf(job.id)!;
      assert.equal(entry.out, 'stdout: during outage\nstdout: after outage\n');
      const seqs = instance.requestsTo('/appendExecutionLog').filter((r) => r.body.jobId === job.id).map((r) => r.body.seq);
      assert.equal(seqs[0], 0);
      assert.equal(seqs[1], 0, 'the failed chunk is resent verbatim with its seq');
    } finally {
      instance.failOperations.delete('appendExecutionLog');
      instance.extensions = [];
      await client.ping();
    }
  });

  it('fails the final flush loudly', async () => {
    const { job, log } = open('step.docker.fail');
    log.start();
    await instance.waitFor('the entry', () => entryOf(job.id));
    instance.failOperations.set('updateExecutionLogEntry', 500);
    try {
      log.onStdout(Buffer.from('x\n'));
      await assert.rejects(log.finish(0), (err: unknown) =>
        err instanceof LogFlushError && err.name === 'LogFlushError' && err.key === 'step.docker.fail' && /unexpected status code 500/.test(err.message));
    } finally {
      instance.failOperations.delete('updateExecutionLogEntry');
    }
  });

  it('fails when the entry could not even be added', async () => {
    instance.failOperations.set('addExecutionLogEntry', 500);
    try {
      const { log } = open('setup.git.init');
      log.start();
      await assert.rejects(log.finish(0), LogFlushError);
    } finally {
      instance.failOperations.delete('addExecutionLogEntry');
    }
  });
});
