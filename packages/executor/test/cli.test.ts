import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AUTH_FAILED_MESSAGE } from '../src/index.js';
import { spawnExecutor, TestInstance, type SpawnedProcess } from '@sandfleet/test-helpers';

const executor = (args: string[], env: Record<string, string>): SpawnedProcess => spawnExecutor(args, { HOME: os.tmpdir(), NO_COLOR: '1', ...env });
const outputMatches = async (run: SpawnedProcess, pattern: RegExp): Promise<void> => void (await run.outputMatches(pattern));

describe('executor CLI (real processes)', () => {
  let instance: TestInstance;
  let workspaceRoot: string;
  let env: Record<string, string>;

  before(async () => {
    instance = await TestInstance.start();
    workspaceRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-cli-'));
    env = {
      EXECUTOR_FRONTEND_URL: instance.url,
      EXECUTOR_FRONTEND_PASSWORD: instance.password,
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_RUNTIME: 'shell',
      EXECUTOR_QUEUE_POLL_INTERVAL: '100ms',
      EXECUTOR_HEARTBEAT_INTERVAL: '200ms',
      EXECUTOR_WORKSPACE_DIR: workspaceRoot,
      EXECUTOR_STATE_DIR: workspaceRoot,
    };
  });
  after(async () => {
    await instance.close();
    fs.rmSync(workspaceRoot, { recursive: true, force: true });
  });

  it('validate passes against a reachable instance with the right token', async () => {
    const run = executor(['validate'], env);
    assert.equal(await run.exit, 0, run.output());
    assert.match(run.output(), /✓ configuration is valid/);
    assert.match(run.output(), /✓ git \d+\.\d+/);
    assert.match(run.output(), new RegExp(`✓ authorized with ${instance.url.replaceAll('.', '\\.')}`));
    assert.match(run.output(), /✓ shell +\/bin\/sh on the host/);
    assert.match(run.output(), /✓ seccomp allow-list: \/usr\/share\/containers\/seccomp\.json/);
    assert.match(run.output(), /auto would pick: /);
    assert.match(run.output(), /the shell runtime runs job steps directly on this host/);
    assert.match(run.output(), /All checks passed!/);
  });

  it('validate fails with Sourcegraph\'s message on a wrong token', async () => {
    const run = executor(['validate'], { ...env, EXECUTOR_FRONTEND_PASSWORD: 'wrong-token' });
    assert.equal(await run.exit, 1);
    assert.ok(run.output().includes(`✗ ${AUTH_FAILED_MESSAGE}`), run.output());
    assert.doesNotMatch(run.output(), /All checks passed!/);
  });

  it('run refuses an invalid configuration with exit code 1, listing every problem', async () => {
    const run = executor(['run'], { EXECUTOR_QUEUE_NAME: 'no/pe', EXECUTOR_MAXIMUM_NUM_JOBS: 'many' });
    assert.equal(await run.exit, 1);
    assert.match(run.output(), /invalid value "" for EXECUTOR_FRONTEND_URL: no value supplied/);
    assert.match(run.output(), /EXECUTOR_QUEUE_NAME 'no\/pe' is not a queue name/);
    assert.match(run.output(), /invalid value "many" for EXECUTOR_MAXIMUM_NUM_JOBS/);
  });

  it('run --verify refuses to start when a check fails', async () => {
    const run = executor(['run', '--verify'], { ...env, EXECUTOR_FRONTEND_PASSWORD: 'wrong-token' });
    assert.equal(await run.exit, 1);
    assert.ok(run.output().includes(AUTH_FAILED_MESSAGE));
    assert.doesNotMatch(run.output(), /"msg":"executor starting"/);
  });

  it('install --dry-run lists each step without changing the host', async () => {
    const run = executor(['install', 'bwrap', '--dry-run', '--state-dir', '/nonexistent/sandfleet-dry-run'], env);
    assert.equal(await run.exit, 0, run.output());
    assert.match(run.output(), /apt packages: .*golang-github-containers-common python3-seccomp bubblewrap/);
    assert.match(run.output(), /seccomp allow-list \/usr\/share\/containers\/seccomp\.json .*\n\s+present/);
    assert.match(run.output(), /state directory \/nonexistent\/sandfleet-dry-run .*\n\s+would create/);
    assert.equal(existsSync('/nonexistent/sandfleet-dry-run'), false);
    const bad = executor(['install', 'nonsense'], env);
    assert.notEqual(await bad.exit, 0);
  });

  it('install docker --dry-run shows the userns-remap steps without changing the host', async () => {
    const daemonJson = '/etc/docker/daemon.json';
    const before = existsSync(daemonJson) ? fs.readFileSync(daemonJson, 'utf8') : undefined;
    const run = executor(['install', 'docker', '--dry-run', '--state-dir', '/nonexistent/sandfleet-dry-run'], { ...env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    assert.equal(await run.exit, 0, run.output());
    assert.match(run.output(), /apt packages: .*docker\.io/);
    assert.match(run.output(), /userns-remap user dockremap .*\n\s+(would create system user dockremap|user dockremap exists); (would add dockremap:\d+:65536 to \/etc\/subuid|already done \(dockremap:\d+:\d+\))/);
    assert.match(run.output(), /\/etc\/docker\/daemon\.json: "userns-remap": "dockremap"\n\s+(would set "userns-remap": "dockremap" in \/etc\/docker\/daemon\.json|already done)/);
    assert.match(run.output(), /docker daemon\n\s+not running: start dockerd/);
    assert.equal(existsSync(daemonJson) ? fs.readFileSync(daemonJson, 'utf8') : undefined, before);
  });

  it('runs jobs, warns about the shell runtime, drains on SIGTERM and exits 0', async () => {
    instance.enqueue({ id: 201, dockerSteps: [{ image: 'x', commands: ['echo from-the-cli-run'] }] });
    const run = executor([], { ...env, EXECUTOR_NAME: 'cli-executor' }); // `run` is the default command
    const mark = await instance.waitFor('the job to complete', () => instance.marks.find((m) => m.jobId === 201), 20_000);
    assert.equal(mark.op, 'markComplete');
    assert.match(instance.logs.get(201)!.at(-1)!.out, /stdout: from-the-cli-run/);
    run.child.kill('SIGTERM');
    assert.equal(await run.exit, 0, run.output());
    const lines = run.output().trim().split('\n').map((l) => JSON.parse(l));
    const messages = lines.map((l) => l.msg);
    for (const msg of ['runtime selected', 'executor starting', 'connected to coordinator', 'job dequeued', 'job finished', 'draining: no new jobs, waiting for running jobs', 'executor stopped']) {
      assert.ok(messages.includes(msg), `missing log line ${msg}: ${messages.join(' | ')}`);
    }
    assert.ok(lines.some((l) => l.level === 40 && /no isolation/.test(l.msg)), 'a loud warning for the shell runtime');
    assert.ok(lines.every((l) => l.executor === 'cli-executor'));
    assert.ok(!run.output().includes(instance.password), 'the password never reaches the executor log');
  });

  it('a second SIGTERM aborts the running job and reports it errored', async () => {
    instance.enqueue({ id: 202, dockerSteps: [{ image: 'x', commands: ['echo started', 'sleep 60'] }] });
    const run = executor(['run'], env);
    await instance.waitFor('the step to start', () => instance.logs.get(202)?.find((e) => e.out.includes('started')), 20_000);
    run.child.kill('SIGTERM');
    // Two distinct deliveries, not one coalesced signal: wait until the first one was handled.
    await outputMatches(run, /"msg":"draining: no new jobs/);
    run.child.kill('SIGTERM');
    assert.equal(await run.exit, 0, run.output());
    const mark = instance.marks.find((m) => m.jobId === 202)!;
    assert.equal(mark.op, 'markErrored');
    assert.equal(mark.errorMessage, 'executor shut down before the job finished');
  });
});
