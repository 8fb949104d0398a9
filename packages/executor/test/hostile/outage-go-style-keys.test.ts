import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, CoordinatorClient, connectionOptions, createLogger, loadConfig, ShellRuntime } from '../../src/index.js';
import { makeTempDir, removeTempDir, TestInstance, shellAgentEnv } from '@sandfleet/test-helpers';

/**
 * A Sourcegraph-style instance whose heartbeat answer is spelled as Go would marshal a struct
 * without json tags (`knownIDs`, `CancelIDs`). Go peers read such keys case-insensitively; so must
 * the executor, or it takes every running job for lost.
 */
describe('heartbeat answers with Go-style keys', () => {
  let instance: TestInstance;
  let workspaceRoot: string;
  before(async () => {
    instance = await TestInstance.start();
    instance.goStyleHeartbeatKeys = true;
    workspaceRoot = makeTempDir('executor-go-keys-');
  });
  after(async () => {
    await instance.close();
    removeTempDir(workspaceRoot);
  });

  it('keeps the job running through many heartbeats and completes it', async () => {
    const config = loadConfig({
      ...shellAgentEnv(instance, workspaceRoot, 'go-keys-executor'),
      EXECUTOR_NUM_TOTAL_JOBS: '1',
    });
    const logLines: any[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(JSON.parse(line)) } });
    const client = new CoordinatorClient({ ...connectionOptions(config), retryBaseDelayMs: 10 });
    const agent = new Agent({ config, client, runtime: new ShellRuntime(), log, pingIntervalMs: 50, logFlushIntervalMs: 50 });
    instance.enqueue({ id: 31, dockerSteps: [{ image: 'x', commands: ['sleep 1.5', 'echo still-mine'] }] });
    const done = agent.run();
    try {
      const mark = await instance.waitFor('the final mark of job 31', () => instance.marks.find((m) => m.jobId === 31), 30_000);
      assert.equal(mark.op, 'markComplete');
      assert.ok(instance.requestsTo('/heartbeat').filter((r) => (r.body?.jobIds ?? []).includes(31)).length >= 3, 'heartbeats listed the job');
      assert.ok(!logLines.some((l) => l.reason === 'lost'), 'the job was never taken for lost');
      assert.match(instance.logs.get(31)!.find((e) => e.key === 'step.docker.0')!.out, /stdout: still-mine/);
    } finally {
      agent.abortJobs();
      await done;
    }
    // The instance is unharmed.
    assert.equal((await fetch(`${instance.url}/.executors/test/auth`, { headers: { Authorization: `token-executor ${instance.password}` } })).status, 200);
  });
});
