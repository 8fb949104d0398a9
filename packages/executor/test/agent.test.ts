import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { Agent, CoordinatorClient, connectionOptions, createLogger, findOnPath, loadConfig, ShellRuntime, type AgentState } from '../src/index.js';
import type { Runtime } from '../src/sandbox/runtime.js';
import { createBareRepository, isAlive, TestInstance, shellAgentEnv } from '@sandfleet/test-helpers';

const REPO = 'github.com/sandfleet/agent-test';

describe('agent with the shell runtime against a test instance', () => {
  let instance: TestInstance;
  let repo: ReturnType<typeof createBareRepository>;
  let workspaceRoot: string;
  const agents: { agent: Agent; done: Promise<void> }[] = [];

  before(async () => {
    instance = await TestInstance.start();
    repo = createBareRepository({ 'README.md': 'hello from the repo\n' });
    instance.gitRepos.set(REPO, repo.bare);
    workspaceRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-agent-'));
  });
  afterEach(async () => {
    // Never leak a running agent into the next test.
    for (const { agent, done } of agents.splice(0)) {
      agent.abortJobs();
      await done;
    }
    instance.queued.length = 0;
    instance.cancelIds.clear();
    instance.forgottenIds.clear();
    instance.failOperations.clear();
  });
  after(async () => {
    await instance.close();
    repo.cleanup();
    fs.rmSync(workspaceRoot, { recursive: true, force: true });
  });

  function startAgent(env: Record<string, string> = {}, runtime: Runtime = new ShellRuntime()) {
    const config = loadConfig({
      ...shellAgentEnv(instance, workspaceRoot, 'agent-test-executor'),
      ...env,
    });
    const logLines: any[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(JSON.parse(line)) } });
    const client = new CoordinatorClient({
      ...connectionOptions(config),
      retryAttempts: 2,
      retryBaseDelayMs: 10,
    });
    const states: AgentState[] = [];
    const agent = new Agent({ config, client, runtime, log, onStateChange: (s) => states.push(s), pingIntervalMs: 50, logFlushIntervalMs: 50 });
    const done = agent.run();
    agents.push({ agent, done });
    return { agent, done, states, logLines };
  }

  const markFor = (jobId: number) => instance.waitFor(`a final mark for job ${jobId}`, () => instance.marks.find((m) => m.jobId === jobId), 15_000);
  const logsOf = (jobId: number) => instance.logs.get(jobId) ?? [];

  it('runs a job end to end: clone, files, steps, redaction, markComplete; then drains after EXECUTOR_NUM_TOTAL_JOBS', async () => {
    const secret = 'sup3r-s3cret-value';
    instance.files.set('batch-changes/spec1/file1', Buffer.from('from the files api\n'));
    instance.enqueue({
      version: 2,
      id: 1,
      repositoryName: REPO,
      commit: repo.commit,
      files: {
        'inputs/a.txt': { content: Buffer.from('base64 content\n').toString('base64'), modifiedAt: '0001-01-01T00:00:00Z' },
        'inputs/b.txt': { bucket: 'batch-changes', key: 'spec1/file1', modifiedAt: '2020-01-01T00:00:00Z' },
      },
      dockerSteps: [
        { key: 'first', image: 'alpine', commands: ['cat README.md inputs/a.txt inputs/b.txt', 'echo "secret=$SECRET"', 'echo oops >&2'], dir: '', env: [`SECRET=${secret}`] },
        { image: 'alpine', commands: ['pwd'], dir: 'inputs' },
      ],
      redactedValues: { [secret]: '[REDACTED]' },
    });
    const { done, states, logLines } = startAgent({ EXECUTOR_NUM_TOTAL_JOBS: '1' });
    await done;
    assert.deepEqual(states, ['running', 'draining', 'stopped']);
    const mark = instance.marks.find((m) => m.jobId === 1)!;
    assert.equal(mark.op, 'markComplete');
    assert.equal(mark.headers.authorization, 'Bearer job-token-1');

    const entries = logsOf(1);
    assert.deepEqual(entries.map((e) => e.key), [
      'setup.git.init', 'setup.git.add-remote', 'setup.git.disable-gc', 'setup.git.fetch', 'setup.git.checkout', 'setup.git.set-remote',
      'setup.fs.extras', 'step.docker.first', 'step.docker.1',
    ]);
    assert.ok(entries.every((e) => e.exitCode === 0), JSON.stringify(entries, null, 1));
    const first = entries[7]!;
    assert.match(first.out, /stdout: hello from the repo\nstdout: base64 content\nstdout: from the files api\n/);
    assert.match(first.out, /stdout: secret=\[REDACTED\]/);
    assert.match(first.out, /stderr: oops/);
    assert.match(first.out, /stderr: \+ echo oops/, 'set -x traces the commands');
    assert.match(entries[8]!.out, /stdout: .*\/inputs\n/);
    assert.deepEqual(first.command, ['/bin/sh', `.sourcegraph-executor/1.0_${REPO.replaceAll('/', '_')}@${repo.commit}.sh`]);
    assert.ok(!JSON.stringify(instance.requests.map((r) => r.body)).includes(secret));
    assert.ok(!JSON.stringify(instance.requests.map((r) => r.body)).includes(instance.password));
    assert.deepEqual(fs.readdirSync(workspaceRoot), [], 'the workspace is removed after the job');
    assert.ok(logLines.some((l) => l.msg === 'job finished' && l.outcome === 'completed' && l.jobId === 1));
    assert.ok(logLines.some((l) => l.msg === 'executor stopped'));
  });

  it('marks a job errored naming the failed step and exit code, and skips the later steps', async () => {
    instance.enqueue({ id: 2, dockerSteps: [{ key: 'bad', image: 'x', commands: ['echo before', 'exit 3'] }, { image: 'x', commands: ['echo never'] }] });
    startAgent();
    const mark = await markFor(2);
    assert.equal(mark.op, 'markErrored');
    assert.equal(mark.errorMessage, 'failed step.docker.bad: exit code 3');
    assert.deepEqual(logsOf(2).map((e) => [e.key, e.exitCode]), [['setup.fs.extras', 0], ['step.docker.bad', 3]]);
  });

  it('cancels a job the instance lists in cancelIds: kills the step and reports markFailed', async () => {
    const pidFile = path.join(workspaceRoot, 'cancel.pid');
    instance.enqueue({ id: 3, dockerSteps: [{ image: 'x', commands: [`echo $$ > ${pidFile}`, 'sleep 60'] }] });
    startAgent();
    const pid = await instance.waitFor('the step to start', () => fs.existsSync(pidFile) && Number(fs.readFileSync(pidFile, 'utf8')) || undefined);
    instance.cancelIds.add('3');
    const mark = await markFor(3);
    assert.equal(mark.op, 'markFailed');
    assert.equal(mark.errorMessage, 'job was canceled');
    assert.equal(isAlive(pid), false);
    fs.rmSync(pidFile, { force: true });
  });

  it('abandons a job the instance no longer knows, reporting nothing', async () => {
    instance.enqueue({ id: 4, dockerSteps: [{ image: 'x', commands: ['sleep 60'] }] });
    const { agent, logLines } = startAgent();
    await instance.waitFor('the step entry', () => logsOf(4).find((e) => e.key === 'step.docker.0'));
    instance.forgottenIds.add('4');
    await instance.waitFor('the agent to drop the job', () => agent.runningJobUids().length === 0);
    assert.equal(instance.marks.some((m) => m.jobId === 4), false);
    assert.ok(logLines.some((l) => l.msg === 'job finished' && l.reason === 'lost'));
  });

  it('stops a job at EXECUTOR_MAXIMUM_RUNTIME_PER_JOB and reports it errored with Sourcegraph\'s message', async () => {
    instance.enqueue({ id: 5, dockerSteps: [{ image: 'x', commands: ['sleep 60'] }] });
    startAgent({ EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: '300ms' });
    const mark = await markFor(5);
    assert.equal(mark.op, 'markErrored');
    assert.equal(mark.errorMessage, 'job exceeded maximum execution time of 300ms');
  });

  it('drains: lets the running job finish, dequeues nothing more, and stops', async () => {
    instance.enqueue({ id: 6, dockerSteps: [{ image: 'x', commands: ['sleep 0.3', 'echo finished'] }] });
    const { agent, done, states } = startAgent();
    await instance.waitFor('the step entry', () => logsOf(6).find((e) => e.key === 'step.docker.0'));
    const dequeuesBefore = instance.requestsTo('/dequeue').length;
    agent.drain('test');
    instance.enqueue({ id: 7, dockerSteps: [{ image: 'x', commands: ['true'] }] });
    await done;
    assert.equal(instance.marks.find((m) => m.jobId === 6)?.op, 'markComplete');
    assert.match(logsOf(6).at(-1)!.out, /stdout: finished/);
    assert.equal(instance.requestsTo('/dequeue').length, dequeuesBefore, 'no dequeue after the drain began');
    assert.equal(instance.queued.length, 1, 'job 7 stays queued');
    assert.deepEqual(states.slice(-2), ['draining', 'stopped']);
  });

  it('removes leftovers of dead executors before the first dequeue and every EXECUTOR_CLEANUP_TASK_INTERVAL', async () => {
    const calls: number[] = [];
    let dequeuesAtFirstCall = -1;
    class ReapingShell extends ShellRuntime {
      async reapLeftovers(): Promise<string[]> {
        if (calls.length === 0) dequeuesAtFirstCall = instance.requestsTo('/dequeue').length;
        calls.push(Date.now());
        return calls.length === 1 ? ['/state/vm-run/sandfleet-vm-left'] : [];
      }
    }
    const dequeuesBefore = instance.requestsTo('/dequeue').length;
    const { agent, done, logLines } = startAgent({ EXECUTOR_CLEANUP_TASK_INTERVAL: '100ms' }, new ReapingShell());
    await instance.waitFor('three cleanups', () => calls.length >= 3 || undefined);
    assert.equal(dequeuesAtFirstCall, dequeuesBefore, 'the first cleanup runs before any dequeue');
    assert.deepEqual(logLines.find((l) => l.msg === 'removed leftovers of an executor that died')?.removed, ['/state/vm-run/sandfleet-vm-left']);
    agent.drain('test');
    await done;
    const after = calls.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(calls.length, after, 'no cleanup after the agent stopped');
  });

  it('aborts running jobs on a second signal and reports them errored', async () => {
    instance.enqueue({ id: 8, dockerSteps: [{ image: 'x', commands: ['sleep 60'] }] });
    const { agent, done } = startAgent();
    await instance.waitFor('the step entry', () => logsOf(8).find((e) => e.key === 'step.docker.0'));
    agent.drain('SIGTERM');
    agent.abortJobs('shutdown');
    await done;
    const mark = instance.marks.find((m) => m.jobId === 8)!;
    assert.equal(mark.op, 'markErrored');
    assert.equal(mark.errorMessage, 'executor shut down before the job finished');
  });

  it('keeps pinging until the instance answers before it dequeues', async () => {
    instance.failOperations.set('heartbeat', 503);
    const heartbeatsBefore = instance.requestsTo('/heartbeat').length;
    const { agent, states } = startAgent();
    await instance.waitFor('two failed pings', () => instance.requestsTo('/heartbeat').length >= heartbeatsBefore + 2 || undefined);
    assert.equal(agent.state, 'starting');
    const dequeues = instance.requestsTo('/dequeue').length;
    instance.failOperations.delete('heartbeat');
    instance.enqueue({ id: 9, dockerSteps: [{ image: 'x', commands: ['true'] }] });
    assert.equal((await markFor(9)).op, 'markComplete');
    assert.ok(instance.requestsTo('/dequeue').length > dequeues);
    assert.equal(states[0], 'running');
  });

  it('runs several jobs at once up to EXECUTOR_MAXIMUM_NUM_JOBS and heartbeats their IDs', async () => {
    const barrier = path.join(workspaceRoot, 'barrier');
    for (const id of [10, 11, 12]) instance.enqueue({ id, dockerSteps: [{ image: 'x', commands: [`while [ ! -e ${barrier} ]; do sleep 0.05; done`] }] });
    const { agent } = startAgent({ EXECUTOR_MAXIMUM_NUM_JOBS: '2' });
    await instance.waitFor('two running jobs in a heartbeat', () =>
      instance.requestsTo('/heartbeat').some((r) => JSON.stringify(r.body.jobIds?.slice().sort()) === '[10,11]'));
    assert.deepEqual(agent.runningJobUids().sort(), ['10', '11']);
    assert.equal(instance.queued.length, 1, 'the third job waits for a free slot');
    fs.writeFileSync(barrier, '');
    for (const id of [10, 11, 12]) assert.equal((await markFor(id)).op, 'markComplete');
    fs.rmSync(barrier);
  });

  it('serves several queues with the multi-queue endpoints', async () => {
    instance.enqueue({ id: 13, queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['sleep 0.3'] }] });
    const { done } = startAgent({ EXECUTOR_QUEUE_NAME: '', EXECUTOR_QUEUE_NAMES: 'batches,codeintel', EXECUTOR_NUM_TOTAL_JOBS: '1' });
    await instance.waitFor('a heartbeat with the job', () =>
      instance.requestsTo('/.executors/queue/heartbeat').some((r) => r.body.jobIdsByQueue?.[0]?.queueName === 'codeintel'));
    await done;
    const mark = instance.marks.find((m) => m.jobId === 13)!;
    assert.equal(mark.op, 'markComplete');
    assert.ok(instance.requests.some((r) => r.path === '/.executors/queue/codeintel/markComplete'));
    assert.ok(instance.requests.some((r) => r.path === '/.executors/queue/codeintel/addExecutionLogEntry'));
  });

  it('fails a job with src-cli steps when src is not installed', async (t) => {
    if (await findOnPath('src', process.env.PATH ?? '')) return t.skip('src-cli is installed on this host');
    instance.enqueue({ id: 14, cliSteps: [{ command: ['batch', 'exec'], dir: '' }] });
    startAgent({ EXECUTOR_ALLOW_HOST_CLI_STEPS: 'true' });
    const mark = await markFor(14);
    assert.equal(mark.op, 'markFailed');
    assert.match(mark.errorMessage!, /src-cli \("src"\) is not installed/);
  });

  it('keeps the workspace with EXECUTOR_KEEP_WORKSPACES and refuses files outside it', async () => {
    instance.enqueue({ id: 15, files: { '../../etc/evil': { content: 'x' } }, dockerSteps: [{ image: 'x', commands: ['true'] }] });
    const { done } = startAgent({ EXECUTOR_KEEP_WORKSPACES: 'true', EXECUTOR_NUM_TOTAL_JOBS: '1' });
    await done;
    const mark = instance.marks.find((m) => m.jobId === 15)!;
    assert.equal(mark.op, 'markErrored');
    assert.equal(mark.errorMessage, 'refusing to write outside of working directory');
    const extras = logsOf(15).find((e) => e.key === 'setup.fs.extras')!;
    assert.equal(extras.exitCode, 1);
    const kept = fs.readdirSync(workspaceRoot).filter((d) => d.startsWith('workspace-15-'));
    assert.equal(kept.length, 1);
    fs.rmSync(path.join(workspaceRoot, kept[0]!), { recursive: true });
  });
});
