import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildStepScript, runProcess, ShellRuntime, SpawnError, stepScriptPath, writeWorkspaceFile } from '../src/index.js';
import { isAlive, waitFor } from '@sandfleet/test-helpers';

const waitUntil = <T>(what: string, check: () => T | undefined) => waitFor(what, check, 5_000, 20);

describe('process cancellation', () => {
  it('kills the whole process group, grandchildren included', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-proc-'));
    const pidFile = path.join(dir, 'grandchild.pid');
    const controller = new AbortController();
    let stdout = '';
    // The shell forks a background sleeper (a grandchild) and then waits on its own sleep.
    const running = runProcess({
      argv: ['/bin/sh', '-c', `sleep 300 & echo $! > ${pidFile}; echo ready; sleep 300`],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      signal: controller.signal,
      killGraceMs: 2_000,
      onStdout: (c) => (stdout += c),
    });
    await waitUntil('the child to start', () => (stdout.includes('ready') ? true : undefined));
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8').trim());
    assert.ok(isAlive(grandchild));
    controller.abort(new Error('test cancel'));
    const result = await running;
    assert.equal(result.aborted, true);
    assert.equal(result.signal, 'SIGTERM');
    assert.equal(result.exitCode, 143);
    await waitUntil('the grandchild to die', () => (isAlive(grandchild) ? undefined : true));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports a binary that cannot start as SpawnError', async () => {
    await assert.rejects(runProcess({ argv: ['/nonexistent/binary'] }), (err: unknown) => err instanceof SpawnError && err.name === 'SpawnError');
  });
});

describe('ShellRuntime', () => {
  let workspace: string;
  before(() => {
    workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-shell-'));
  });
  after(() => fs.rmSync(workspace, { recursive: true, force: true }));

  it('runs the step script in <workspace>/<dir> with only the step env', async () => {
    process.env.EXECUTOR_TEST_HOST_SECRET = 'must-not-leak';
    try {
      const job = { id: 7, repositoryName: 'github.com/a/b', commit: 'abc' };
      const scriptPath = stepScriptPath(job, 0);
      await writeWorkspaceFile(workspace, scriptPath, { content: Buffer.from(buildStepScript(['pwd', 'echo "greeting=$GREETING"', 'env | sort'])) });
      fs.mkdirSync(path.join(workspace, 'sub/dir'), { recursive: true });
      const runtime = new ShellRuntime();
      assert.equal((await runtime.probe()).available, true);
      assert.equal(runtime.isolating, false);
      const controller = new AbortController();
      const sandbox = await runtime.prepare({
        jobId: '7-test',
        workspaceDir: workspace,
        progress: () => {},
        signal: controller.signal,
      });
      let stdout = '';
      const result = await sandbox.run(
        { key: 'step.docker.0', image: 'ignored', scriptPath, dir: 'sub/dir', env: ['GREETING=hello world', 'EMPTY='] },
        { onStdout: (c) => (stdout += c), onStderr: () => {}, signal: controller.signal },
      );
      await sandbox.teardown();
      assert.equal(result.exitCode, 0);
      const lines = stdout.trim().split('\n');
      assert.equal(fs.realpathSync(lines[0]!), fs.realpathSync(path.join(workspace, 'sub/dir')));
      assert.equal(lines[1], 'greeting=hello world');
      const envNames = lines.slice(2).map((l) => l.split('=')[0]);
      assert.ok(envNames.includes('GREETING') && envNames.includes('EMPTY'));
      assert.ok(!stdout.includes('must-not-leak'), 'host env must not reach the step');
      assert.ok(!envNames.includes('EXECUTOR_TEST_HOST_SECRET'));
    } finally {
      delete process.env.EXECUTOR_TEST_HOST_SECRET;
    }
  });
});
