import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Agent, CoordinatorClient, connectionOptions, createLogger, loadConfig, ShellRuntime } from '../../src/index.js';
import { makeTempDir, removeTempDir, TestInstance, shellAgentEnv } from '@sandfleet/test-helpers';

/**
 * An instance that cannot take a finished job's result (5xx on every mark): the executor keeps the
 * result, retries it, keeps the job in its heartbeats and takes no job beyond its slots meanwhile;
 * it stops only when a heartbeat says the job is gone.
 */
describe('a result the instance cannot take yet', () => {
  let instance: TestInstance;
  let workspaceRoot: string;
  const running: { agent: Agent; done: Promise<void> }[] = [];
  before(async () => {
    instance = await TestInstance.start();
    workspaceRoot = makeTempDir('executor-pending-result-');
  });
  afterEach(async () => {
    for (const { agent, done } of running.splice(0)) {
      agent.abortJobs();
      await done;
    }
    instance.failOperations.clear();
    instance.forgottenIds.clear();
  });
  after(async () => {
    await instance.close();
    removeTempDir(workspaceRoot);
  });

  function startAgent() {
    const config = loadConfig({
      ...shellAgentEnv(instance, workspaceRoot, 'pending-result-executor'),
      EXECUTOR_MAXIMUM_NUM_JOBS: '1',
    });
    const logLines: any[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(JSON.parse(line)) } });
    const client = new CoordinatorClient({ ...connectionOptions(config), retryBaseDelayMs: 20, retryMaxDelayMs: 200 });
    const agent = new Agent({ config, client, runtime: new ShellRuntime(), log, pingIntervalMs: 50, logFlushIntervalMs: 50 });
    const done = agent.run();
    running.push({ agent, done });
    return { agent, logLines };
  }

  const heartbeatsListing = (id: number) => instance.requestsTo('/heartbeat').filter((r) => (r.body?.jobIds ?? []).includes(id)).length;

  it('retries the mark with a heartbeat before each retry, holds the slot, and delivers once the instance recovers', async () => {
    instance.failOperations.set('markComplete', 503);
    instance.enqueue({ id: 41, dockerSteps: [{ image: 'x', commands: ['echo done-41'] }] });
    instance.enqueue({ id: 42, dockerSteps: [{ image: 'x', commands: ['echo done-42'] }] });
    const { agent } = startAgent();
    await instance.waitFor('five refused marks of job 41', () => instance.requestsTo('/markComplete').filter((r) => r.body.jobId === 41).length >= 5, 30_000);
    const listedBefore = heartbeatsListing(41);
    await instance.waitFor('more heartbeats listing job 41', () => heartbeatsListing(41) >= listedBefore + 3, 30_000);
    assert.deepEqual(agent.runningJobUids(), ['41'], 'the finished job holds its slot');
    assert.equal(instance.queued.length, 1, 'job 42 is not taken while the result of 41 is pending');
    // Every retried mark came right after a heartbeat.
    const ops = instance.requests.filter((r) => r.path.endsWith('/heartbeat') || (r.path.endsWith('/markComplete') && r.body.jobId === 41)).map((r) => r.path.split('/').at(-1));
    const firstMark = ops.indexOf('markComplete');
    for (let i = firstMark + 1; i < ops.length; i++) if (ops[i] === 'markComplete') assert.equal(ops[i - 1], 'heartbeat', ops.join(','));

    instance.failOperations.delete('markComplete');
    await instance.waitFor('job 41 marked', () => instance.marks.find((m) => m.jobId === 41), 30_000);
    await instance.waitFor('job 42 marked', () => instance.marks.find((m) => m.jobId === 42), 30_000);
    assert.equal(instance.marks.filter((m) => m.jobId === 41).length, 1);
  });

  it('gives the result up when a heartbeat no longer lists the job, and takes the next job', async () => {
    instance.failOperations.set('markComplete', 502);
    instance.enqueue({ id: 43, dockerSteps: [{ image: 'x', commands: ['echo done-43'] }] });
    const { agent, logLines } = startAgent();
    await instance.waitFor('refused marks of job 43', () => instance.requestsTo('/markComplete').filter((r) => r.body.jobId === 43).length >= 2, 30_000);
    instance.forgottenIds.add('43');
    await instance.waitFor('the agent to let job 43 go', () => agent.runningJobUids().length === 0, 30_000);
    const marksAfter = instance.requestsTo('/markComplete').filter((r) => r.body.jobId === 43).length;
    instance.failOperations.delete('markComplete');
    instance.enqueue({ id: 44, dockerSteps: [{ image: 'x', commands: ['echo done-44'] }] });
    await instance.waitFor('job 44 marked', () => instance.marks.find((m) => m.jobId === 44), 30_000);
    assert.equal(instance.requestsTo('/markComplete').filter((r) => r.body.jobId === 43).length, marksAfter, 'no mark of 43 after it was fenced out');
    assert.ok(logLines.some((l) => l.jobId === 43 && l.level === 40 && /result/.test(l.msg)), 'the drop is logged');
  });
});
