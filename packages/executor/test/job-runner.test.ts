import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoordinatorClient, createLogger, JobCanceledError, loadConfig, runJob, ShellRuntime, type JobRunnerDeps } from '../src/index.js';
import { testJob } from './job-fixtures.js';
import { TestInstance } from '@sandfleet/test-helpers';

describe('runJob', () => {
  let instance: TestInstance;
  let root: string;
  let deps: JobRunnerDeps;
  let binDir: string;

  before(async () => {
    instance = await TestInstance.start();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-runjob-'));
    binDir = path.join(root, 'bin');
    fs.mkdirSync(binDir);
    // A stand-in src-cli: prints its arguments, working directory and one variable of its env.
    fs.writeFileSync(path.join(binDir, 'src'), '#!/bin/sh\necho "src $* in $(basename "$PWD") with FOO=$FOO"\n', { mode: 0o755 });
    const config = loadConfig({
      EXECUTOR_FRONTEND_URL: instance.url,
      EXECUTOR_FRONTEND_PASSWORD: instance.password,
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_RUNTIME: 'shell',
      EXECUTOR_ALLOW_HOST_CLI_STEPS: 'true',
      EXECUTOR_WORKSPACE_DIR: path.join(root, 'workspaces'),
    });
    const client = new CoordinatorClient({
      frontendUrl: config.frontendUrl,
      frontendPassword: config.frontendPassword,
      executorName: 'runjob-test',
      queueNames: config.queueNames,
      multiQueue: false,
    });
    await client.ping();
    deps = {
      config,
      client,
      runtime: new ShellRuntime(),
      log: createLogger({ level: process.env.DBG ? 'debug' : 'silent' }),
      logFlushIntervalMs: 50,
      hostPath: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    };
  });
  after(async () => {
    await instance.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const job = testJob;

  it('writes v1 files as plain text and runs src-cli steps on the host in their dir with their env', async () => {
    const outcome = await runJob(
      job(301, {
        files: { 'work/plain.txt': { content: 'plain v1 text, not base64' } },
        dockerSteps: [{ image: 'x', commands: ['cat work/plain.txt'], dir: '' }],
        cliSteps: [{ key: 'exec', command: ['batch', 'exec', '-f', 'spec.json'], dir: 'work', env: ['FOO=bar'] }],
      }),
      deps,
      new AbortController().signal,
    );
    assert.deepEqual(outcome, { status: 'completed' });
    const entries = instance.logs.get(301)!;
    assert.deepEqual(entries.map((e) => e.key), ['setup.fs.extras', 'step.docker.0', 'step.src.exec']);
    assert.equal(entries[1]!.out.split('\n').find((l) => l.startsWith('stdout:')), 'stdout: plain v1 text, not base64');
    assert.deepEqual(entries[2]!.command, [path.join(binDir, 'src'), 'batch', 'exec', '-f', 'spec.json']);
    assert.equal(entries[2]!.out, 'stdout: src batch exec -f spec.json in work with FOO=bar\n');
    assert.match(entries[0]!.out, /^Wrote work\/plain\.txt in \d+ms\nWrote \.sourcegraph-executor\/301\.0_@\.sh\n$/);
  });

  it('refuses a step dir outside the workspace', async () => {
    const outcome = await runJob(job(302, { dockerSteps: [{ image: 'x', commands: ['true'], dir: '../..' }] }), deps, new AbortController().signal);
    assert.deepEqual(outcome, { status: 'errored', message: 'failed step.docker.0: exit code 1 (refusing to write outside of working directory)' });
  });

  it('reports a cancellation with its typed reason', async () => {
    const controller = new AbortController();
    const running = runJob(job(303, { dockerSteps: [{ image: 'x', commands: ['echo go', 'sleep 60'], dir: '' }] }), deps, controller.signal);
    await instance.waitFor('the step output', () => instance.logs.get(303)?.find((e) => e.out.includes('go')));
    controller.abort(new JobCanceledError('user', 'job was canceled'));
    assert.deepEqual(await running, { status: 'canceled', reason: 'user', message: 'job was canceled' });
    const step = instance.logs.get(303)!.find((e) => e.key === 'step.docker.0')!;
    assert.equal(step.exitCode, 143, 'the final entry records the killed step');
    assert.deepEqual(fs.readdirSync(path.join(root, 'workspaces')), []);
  });
});
