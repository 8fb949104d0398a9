import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { basicEnv, isAlive, makeTempDir, removeTempDir, spawnProcess } from '@sandfleet/test-helpers';
import { SANDFLEET_BIN } from '@sandfleet/test-helpers/coordinator';

/** The direct children of `pid` whose command line matches `pattern`. */
function childPids(pid: number, pattern: RegExp): number[] {
  const ps = spawnSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .filter((l) => pattern.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((n) => n > 0);
}

/** Processes (started by this test) running `sleep <marker>`. */
function stepPids(marker: number): number[] {
  const pgrep = spawnSync('pgrep', ['-f', `^sleep ${marker}$`], { encoding: 'utf8' });
  return pgrep.stdout.split('\n').map(Number).filter((n) => n > 0);
}


async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('sandfleet up', () => {
  it('stops its local executor, running job included, on a SIGINT sent to its own pid only', async () => {
    const dir = makeTempDir('sandfleet-up-stop-');
    // A marker no other process on the host has: the running step, to check it is gone too.
    const marker = 600 + Math.floor(Math.random() * 300);
    const up = spawnProcess(process.execPath, [SANDFLEET_BIN, 'up', '--port', '0', '--data-dir', path.join(dir, 'data'), '--runtime', 'shell'], basicEnv({ HOME: dir }));
    let executors: number[] = [];
    try {
      await until('sandfleet up to be ready', () => /Press Ctrl-C to stop/.test(up.output()), 120_000);
      const url = /web UI:\s+(?:\x1b\[[0-9;]*m)?(http:\/\/[^/\s\x1b]+)/.exec(up.output())![1]!;
      const token = fs.readFileSync(path.join(dir, 'data', 'admin-token'), 'utf8').trim();
      const api = async (method: string, p: string, body?: unknown) => {
        const res = await fetch(url + p, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
        return res.json() as Promise<any>;
      };
      const job = await api('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['echo started', `sleep ${marker}`] }] });
      await until('the job to run', async () => (await api('GET', `/api/jobs/${job.id}`)).state === 'processing', 120_000);
      executors = childPids(up.child.pid!, /bin\/executor\.js run/);
      assert.ok(executors.length > 0, 'the local executor runs');
      await until('the step to start', () => stepPids(marker).length > 0, 60_000);

      up.child.kill('SIGINT'); // to this pid only, not the process group as a terminal would
      // Without the fix the executor drains: it waits for the 10-minute step. 60 s is a loose bound for a prompt stop on a loaded host.
      const code = await Promise.race([up.exit, new Promise((r) => setTimeout(() => r('still running'), 60_000))]);
      assert.equal(code, 0, up.output().slice(-2000));
      assert.deepEqual(executors.filter(isAlive), [], 'the executor exited');
      await until('the running step to be stopped', () => stepPids(marker).length === 0, 30_000);
    } finally {
      await up.stop('SIGKILL');
      for (const pid of executors.filter(isAlive)) process.kill(pid, 'SIGKILL');
      for (const pid of stepPids(marker)) process.kill(pid, 'SIGKILL');
      removeTempDir(dir);
    }
  });
});
