/**
 * The standalone executor from `npm run release`: the one file, copied alone into an empty
 * directory, with no checkout, node_modules or npm around it, reports its version and commit,
 * validates against a real coordinator and completes a real job.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basicEnv, buildTestImages, createGitRepository, makeTempDir, removeTempDir, spawnProcess, startRegistry, SYSTEM_PATH_ENV, type TestRegistry } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorProcess, waitForJobState, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { sourceCommit } from '../../../scripts/release/bundle.js';
import { buildExecutorBinary, EXECUTOR_ARTIFACT } from '../../../scripts/release/executor.js';
import { EXECUTOR_VERSION } from '../src/version.js';


describe('the standalone executor binary', { timeout: 240_000 }, () => {
  let buildDir: string;
  let host: string;
  let executor: string;
  let commit: string;
  let coordinator: CoordinatorProcess;
  const repo = createGitRepository({ 'README.md': 'cloned by the standalone executor\n' });

  before(async () => {
    commit = sourceCommit();
    buildDir = makeTempDir('sandfleet-release-build-');
    await buildExecutorBinary({ outFile: path.join(buildDir, EXECUTOR_ARTIFACT), commit });
    // The worker: an empty directory holding nothing but the copied file.
    host = makeTempDir('sandfleet-release-host-');
    executor = path.join(host, 'executor');
    fs.copyFileSync(path.join(buildDir, EXECUTOR_ARTIFACT), executor);
    fs.chmodSync(executor, 0o755);
    removeTempDir(buildDir);
    coordinator = await startCoordinatorProcess('pglite');
    const registered = await coordinator.api('POST', '/api/repositories', { name: 'github.com/sandfleet/release', source: repo.path });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
  });
  after(async () => {
    await coordinator?.stop();
    if (host) removeTempDir(host);
  });

  /** The binary run from the empty directory with a system PATH and only `env` besides. */
  const run = (args: string[], env: Record<string, string> = {}) => {
    const spawned = spawnProcess(executor, args, { ...basicEnv({ ...SYSTEM_PATH_ENV, HOME: host, ...env }) });
    return spawned;
  };
  const workerEnv = () => ({
    EXECUTOR_FRONTEND_URL: coordinator.url,
    EXECUTOR_FRONTEND_PASSWORD: ACCESS_TOKEN,
    EXECUTOR_QUEUE_NAME: 'batches',
    EXECUTOR_RUNTIME: 'shell',
    EXECUTOR_STATE_DIR: path.join(host, 'state'),
    EXECUTOR_WORKSPACE_DIR: host,
  });

  it('prints its version and the commit it was built from', async () => {
    const spawned = run(['--version']);
    assert.equal(await spawned.exit, 0, spawned.output());
    assert.equal(spawned.output().trim(), `${EXECUTOR_VERSION} (commit ${commit})`);
  });

  it('validates against a real coordinator', async () => {
    const spawned = run(['validate'], workerEnv());
    assert.equal(await spawned.exit, 0, spawned.output());
    assert.match(spawned.output(), new RegExp(`authorized with ${coordinator.url}`));
  });

  it('completes a job and logs each request at debug level', async () => {
    const submitted = await coordinator.api('POST', '/api/jobs', {
      queue: 'batches',
      repositoryName: 'github.com/sandfleet/release',
      commit: repo.commit,
      dockerSteps: [{ key: 'hello', image: 'ignored-by-shell', commands: ['cat README.md'] }],
    });
    assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
    const spawned = run(['run'], { ...workerEnv(), EXECUTOR_NUM_TOTAL_JOBS: '1', EXECUTOR_QUEUE_POLL_INTERVAL: '200ms', SRC_LOG_LEVEL: 'dbug' });
    const job = await waitForJobState(coordinator, submitted.body.id, ['completed', 'failed', 'errored'], 90_000);
    assert.equal(job.state, 'completed', JSON.stringify(job, null, 2));
    const step = (job.executionLogs as Array<{ key: string; out?: string }>).find((e) => e.key === 'step.docker.hello');
    assert.match(step?.out ?? '', /stdout: cloned by the standalone executor/);
    assert.equal(await spawned.exit, 0, spawned.output());

    const requests = spawned.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
    const markComplete = requests.find((r) => r.path === '/.executors/queue/batches/markComplete');
    assert.ok(markComplete, `no markComplete request line in:\n${spawned.output()}`);
    assert.equal(markComplete.level, 20, 'debug level');
    assert.equal(markComplete.method, 'POST');
    assert.equal(markComplete.status, 204);
    assert.equal(typeof markComplete.durationMs, 'number');
    assert.ok(!spawned.output().includes(ACCESS_TOKEN), 'the frontend password must not reach the log');
  });

  it('runs a step in a bwrap sandbox, under the seccomp filter it compiles with its embedded script', async (t) => {
    let registry: TestRegistry | undefined;
    const stateDir = makeTempDir('sandfleet-release-state-');
    try {
      const probe = run(['validate'], { ...workerEnv(), EXECUTOR_RUNTIME: 'bwrap', EXECUTOR_STATE_DIR: stateDir });
      await probe.exit;
      if (!/✓ bwrap/.test(probe.output())) return t.skip(`bwrap is not available here:\n${probe.output()}`);
      registry = await startRegistry();
      await registry.push('test/busybox', '1', (await buildTestImages()).busybox);
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'batches',
        // unshare(CLONE_NEWUSER) is what the filter refuses a step: it fails only when the filter is on.
        dockerSteps: [{ key: 'sandboxed', image: `${registry.host}/test/busybox:1`, commands: ['echo "inside as $(id -u)"', 'unshare -U true && echo unfiltered || echo filtered'] }],
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const spawned = run(['run'], {
        ...workerEnv(),
        EXECUTOR_RUNTIME: 'bwrap',
        EXECUTOR_STATE_DIR: stateDir,
        EXECUTOR_NETWORK: 'none',
        EXECUTOR_ALLOWED_PRIVATE_REGISTRIES: registry.host,
        EXECUTOR_JOB_NUM_CPUS: '1',
        EXECUTOR_JOB_MEMORY: '256M',
        EXECUTOR_FIRECRACKER_DISK_SPACE: '256M',
        EXECUTOR_NUM_TOTAL_JOBS: '1',
        EXECUTOR_QUEUE_POLL_INTERVAL: '200ms',
      });
      const job = await waitForJobState(coordinator, submitted.body.id, ['completed', 'failed', 'errored'], 120_000);
      assert.equal(job.state, 'completed', `${JSON.stringify(job, null, 2)}\n${spawned.output()}`);
      const step = (job.executionLogs as Array<{ key: string; out?: string }>).find((e) => e.key === 'step.docker.sandboxed');
      assert.match(step?.out ?? '', /stdout: inside as 1000/);
      assert.match(step?.out ?? '', /stdout: filtered/);
      assert.equal(await spawned.exit, 0, spawned.output());
    } finally {
      await registry?.stop();
      removeTempDir(stateDir);
    }
  });
});
