/**
 * The coordinator bundle from `npm run release`: the tarball, unpacked alone into an empty
 * directory, runs on the system's node with no checkout or node_modules around it — `serve` on
 * the embedded database, the UI's files, and the executor it carries completing a job.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basicEnv, createGitRepository, makeTempDir, removeTempDir, spawnProcess, SYSTEM_PATH_ENV } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorProcess, waitForJobState, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { sourceCommit } from '../../../scripts/release/bundle.js';
import { buildCoordinatorBundle, coordinatorVersion } from '../../../scripts/release/coordinator.js';

/** System directories only: node, git and sh, but no node_modules/.bin. */
const SYSTEM_PATH = SYSTEM_PATH_ENV.PATH;

describe('the coordinator release bundle', { timeout: 240_000 }, () => {
  const version = coordinatorVersion();
  let host: string;
  let root: string;
  let coordinator: CoordinatorProcess;
  const repo = createGitRepository({ 'README.md': 'cloned through the bundled coordinator\n' });

  before(async () => {
    const out = makeTempDir('sandfleet-release-out-');
    try {
      const tarball = await buildCoordinatorBundle({ outDir: out, version, commit: sourceCommit() });
      host = makeTempDir('sandfleet-release-host-');
      execFileSync('tar', ['-xzf', tarball, '-C', host]);
    } finally {
      removeTempDir(out);
    }
    root = path.join(host, `sandfleet-${version}`);
    coordinator = await startCoordinatorProcess('pglite', { PATH: SYSTEM_PATH }, [path.join(root, 'bin/sandfleet')]);
  });
  after(async () => {
    await coordinator?.stop();
    if (host) removeTempDir(host);
  });

  it('prints its version', async () => {
    const spawned = spawnProcess(path.join(root, 'bin/sandfleet'), ['--version'], basicEnv({ PATH: SYSTEM_PATH }));
    assert.equal(await spawned.exit, 0, spawned.output());
    assert.equal(spawned.output().trim(), version);
  });

  it('serves the UI with its static files', async () => {
    const page = await fetch(`${coordinator.url}/sign-in`);
    assert.equal(page.status, 200);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[0-9a-f]+\/[\w.-]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.some((a) => a.endsWith('/htmx.min.js')) && assets.some((a) => a.endsWith('/ui.css')), `assets: ${assets.join(', ')}`);
    for (const asset of assets) {
      const answer = await fetch(`${coordinator.url}${asset}`);
      assert.equal(answer.status, 200, asset);
      assert.ok((await answer.arrayBuffer()).byteLength > 100, asset);
    }
  });

  it('completes a job run by the executor it carries', async () => {
    const registered = await coordinator.api('POST', '/api/repositories', { name: 'github.com/sandfleet/bundle', source: repo.path });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const submitted = await coordinator.api('POST', '/api/jobs', {
      queue: 'batches',
      repositoryName: 'github.com/sandfleet/bundle',
      commit: repo.commit,
      dockerSteps: [{ key: 'hello', image: 'ignored-by-shell', commands: ['cat README.md'] }],
    });
    assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
    const executor = spawnProcess('node', [path.join(root, 'node_modules/@sandfleet/executor/bin/executor.js'), 'run'], basicEnv({
      PATH: SYSTEM_PATH,
      HOME: host,
      EXECUTOR_FRONTEND_URL: coordinator.url,
      EXECUTOR_FRONTEND_PASSWORD: ACCESS_TOKEN,
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_RUNTIME: 'shell',
      EXECUTOR_NUM_TOTAL_JOBS: '1',
      EXECUTOR_QUEUE_POLL_INTERVAL: '200ms',
      EXECUTOR_STATE_DIR: path.join(host, 'state'),
      EXECUTOR_WORKSPACE_DIR: host,
    }));
    try {
      const job = await waitForJobState(coordinator, submitted.body.id, ['completed', 'failed', 'errored'], 90_000);
      assert.equal(job.state, 'completed', JSON.stringify(job, null, 2));
      const step = (job.executionLogs as Array<{ key: string; out?: string }>).find((e) => e.key === 'step.docker.hello');
      assert.match(step?.out ?? '', /stdout: cloned through the bundled coordinator/);
      assert.equal(await executor.exit, 0, executor.output());
    } finally {
      await executor.stop();
    }
  });
});
