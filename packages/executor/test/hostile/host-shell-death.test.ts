/**
 * The shell runtime runs steps as plain host processes: when its executor is SIGKILLed, its job is
 * handed out again, so the old step must not keep running (and writing to the host) meanwhile.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeTempDir, startExecutorProcess, TestInstance, waitFor } from '@sandfleet/test-helpers';

/** Running, and not merely a zombie waiting for a parent to reap it. */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
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
      assert.ok(stepPids.every(running));
      executor.child.kill('SIGKILL');
      await waitFor('the step processes to die', () => !stepPids.some(running), 10_000).catch(() => undefined);
      assert.deepEqual(stepPids.filter(running), [], `still running after the executor died: ${executor.output().slice(-500)}`);
    } finally {
      for (const pid of stepPids.filter(running)) process.kill(pid, 'SIGKILL');
      await executor.stop('SIGKILL');
    }
    // The instance is unharmed.
    const res = await fetch(`${instance.url}/.executors/queue/batches/dequeue`, { method: 'POST' });
    await res.body?.cancel();
    assert.ok(res.status > 0);
  });
});
