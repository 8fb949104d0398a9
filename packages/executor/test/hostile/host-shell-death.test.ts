/**
 * The shell runtime runs steps as plain host processes: when its executor is SIGKILLed, its job is
 * handed out again, so the old step must not keep running (and writing to the host) meanwhile. Nor
 * may anything a step started outlive the step itself: not a background child, not one that called
 * setsid, not a double-forked grandchild.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildStepScript, ShellRuntime, stepScriptPath, writeWorkspaceFile } from '../../src/index.js';
import { isRunning, makeTempDir, removeTempDir, startExecutorProcess, TestInstance, waitFor } from '@sandfleet/test-helpers';

/**
 * Step commands that start four sleepers and write their pids to `pidFile` (space-separated, once
 * all are known): a background child, a setsid child, a double-forked grandchild in its own session
 * and one that double-forks and then calls setsid.
 */
function escapingCommands(pidFile: string): string[] {
  const tmp = `${pidFile}.tmp`;
  return [
    'sleep 300 & a=$!',
    'setsid sleep 300 & b=$!',
    `sh -c 'setsid sleep 300 & echo $! > ${tmp}.c' &`,
    `sh -c '(setsid sleep 300 & echo $! > ${tmp}.d) &' &`,
    `while [ ! -s ${tmp}.c ] || [ ! -s ${tmp}.d ]; do sleep 0.05; done`,
    `echo "$a $b $(cat ${tmp}.c) $(cat ${tmp}.d)" > ${tmp} && mv ${tmp} ${pidFile}`,
  ];
}

async function readPids(pidFile: string): Promise<number[]> {
  return waitFor('the step to start its sleepers', () => {
    const written = fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim().split(' ').map(Number) : [];
    return written.length === 4 && written.every((n) => n > 0) && written;
  }, 60_000);
}

async function assertAllGone(pids: number[], when: string): Promise<void> {
  await waitFor(`the step's processes to die ${when}`, () => !pids.some(isRunning), 10_000).catch(() => undefined);
  const left = pids.filter(isRunning);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  assert.deepEqual(left, [], `still running ${when}`);
}

describe('shell runtime steps of a killed executor', () => {
  let instance: TestInstance;
  let root: string;

  before(async () => {
    instance = await TestInstance.start();
    root = makeTempDir('executor-hostile-shell-death-');
  });
  after(async () => {
    await instance.close();
    removeTempDir(root);
  });

  it('are killed, with their children, within seconds of the executor\'s SIGKILL', async () => {
    const pids = path.join(root, 'pids');
    instance.enqueue({ id: 601, dockerSteps: [{ image: 'x', commands: [`sleep 300 & echo "$$ $!" > ${pids}`, 'wait'] }] });
    const executor = startExecutorProcess(instance.url, instance.password, { EXECUTOR_RUNTIME: 'shell', EXECUTOR_QUEUE_POLL_INTERVAL: '100ms' });
    let stepPids: number[] = [];
    try {
      // The step's shell and its background child, once both are written.
      stepPids = await waitFor('the step to start', () => {
        const written = fs.existsSync(pids) ? fs.readFileSync(pids, 'utf8').trim().split(' ').map(Number) : [];
        return written.length === 2 && written.every((n) => n > 0) && written;
      }, 60_000);
      assert.ok(stepPids.every(isRunning));
      executor.child.kill('SIGKILL');
      await waitFor('the step processes to die', () => !stepPids.some(isRunning), 10_000).catch(() => undefined);
      assert.deepEqual(stepPids.filter(isRunning), [], `still running after the executor died: ${executor.output().slice(-500)}`);
    } finally {
      for (const pid of stepPids.filter(isRunning)) process.kill(pid, 'SIGKILL');
      await executor.stop('SIGKILL');
    }
    // The instance is unharmed.
    const res = await fetch(`${instance.url}/.executors/queue/batches/dequeue`, { method: 'POST' });
    await res.body?.cancel();
    assert.ok(res.status > 0);
  });

  it('are killed when they left the process group (setsid, double fork)', async () => {
    const pidFile = path.join(root, 'escaped-pids');
    instance.enqueue({ id: 602, dockerSteps: [{ image: 'x', commands: [...escapingCommands(pidFile), 'sleep 300'] }] });
    const executor = startExecutorProcess(instance.url, instance.password, { EXECUTOR_RUNTIME: 'shell', EXECUTOR_QUEUE_POLL_INTERVAL: '100ms' });
    let stepPids: number[] = [];
    try {
      stepPids = await readPids(pidFile);
      assert.ok(stepPids.every(isRunning));
      executor.child.kill('SIGKILL');
      await assertAllGone(stepPids, `after the executor died: ${executor.output().slice(-500)}`);
    } finally {
      for (const pid of stepPids.filter(isRunning)) process.kill(pid, 'SIGKILL');
      await executor.stop('SIGKILL');
    }
  });
});

describe('shell runtime steps that end', () => {
  let workspace: string;
  before(() => {
    workspace = makeTempDir('executor-hostile-shell-end-');
  });
  after(() => removeTempDir(workspace));

  async function runStep(index: number, commands: string[], signal: AbortSignal) {
    const scriptPath = stepScriptPath({ id: 603, repositoryName: '', commit: '' }, index);
    await writeWorkspaceFile(workspace, scriptPath, { content: Buffer.from(buildStepScript(commands)) });
    const sandbox = await new ShellRuntime().prepare({ jobId: '603-test', workspaceDir: workspace, progress: () => {}, signal });
    try {
      return await sandbox.run({ key: `step.docker.${index}`, image: 'x', scriptPath, dir: '', env: [] }, { onStdout: () => {}, onStderr: () => {}, signal });
    } finally {
      await sandbox.teardown();
    }
  }

  it('leave nothing running after a normal end', { timeout: 60_000 }, async () => {
    const pidFile = path.join(workspace, 'ended-pids');
    const result = await runStep(0, escapingCommands(pidFile), new AbortController().signal);
    assert.equal(result.exitCode, 0);
    await assertAllGone(await readPids(pidFile), 'after the step ended');
  });

  it('leave nothing running after a cancel', { timeout: 60_000 }, async () => {
    const pidFile = path.join(workspace, 'canceled-pids');
    const controller = new AbortController();
    const step = runStep(1, [...escapingCommands(pidFile), 'sleep 300'], controller.signal);
    const pids = await readPids(pidFile);
    assert.ok(pids.every(isRunning));
    controller.abort(new Error('canceled'));
    await step;
    await assertAllGone(pids, 'after the step was canceled');
  });
});

describe('shell runtime steps whose supervisor was killed too', () => {
  it('are killed when the next executor starts', { timeout: 60_000 }, async () => {
    const v2 = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.includes(' - cgroup2 '))?.split(' ')[4];
    assert.ok(v2, 'a cgroup v2 hierarchy');
    // An executor that is gone: a process that has exited, whose pid names the leaf.
    const gone = spawnSync('/bin/true').pid;
    assert.ok(gone);
    const leaf = path.join(v2, 'sandfleet', `shell-${gone}-1`);
    fs.mkdirSync(leaf, { recursive: true });
    // What its step left: a sleeper in the leaf, in a session of its own.
    const sleeper = spawn('/bin/sh', ['-c', `echo $$ > ${leaf}/cgroup.procs && exec setsid sleep 300`], { stdio: 'ignore', detached: true });
    sleeper.unref();
    const pid = await waitFor('the sleeper in the leaf', () => {
      const pids = fs.readFileSync(path.join(leaf, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      return pids.length === 1 && fs.readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').startsWith('sleep') && pids[0];
    }, 10_000);
    try {
      await new ShellRuntime().probe();
      await assertAllGone([pid], 'after the next executor started');
      assert.equal(fs.existsSync(leaf), false, 'the leaf is removed');
    } finally {
      if (isRunning(pid)) process.kill(pid, 'SIGKILL');
      await waitFor('the leaf to be empty', () => !isRunning(pid), 5_000).catch(() => undefined);
      if (fs.existsSync(leaf)) fs.rmdirSync(leaf);
    }
  });
});
