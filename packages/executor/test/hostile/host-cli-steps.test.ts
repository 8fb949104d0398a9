/**
 * Hostile src-cli steps: a job that ships its own `src` in the workspace and points PATH (or the
 * dynamic loader) at it, to run its code on the executor host outside any sandbox.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoordinatorClient, createLogger, loadConfig, runJob, ShellRuntime, type ExecutorJob, type JobRunnerDeps, type Runtime } from '../../src/index.js';
import { testJob } from '../job-fixtures.js';
import { BwrapRuntime } from '../../src/sandbox/oci/bwrap.js';
import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { LIMITS } from '../sandbox/suite.js';
import { makeTempDir, removeTempDir, TestInstance } from '@sandfleet/test-helpers';

describe('src-cli steps from a hostile job', () => {
  let instance: TestInstance;
  let root: string;
  let binDir: string;
  let client: CoordinatorClient;

  before(async () => {
    instance = await TestInstance.start();
    root = makeTempDir('executor-hostile-cli-');
    // The host's own src-cli stand-in: harmless, and it says it ran.
    binDir = path.join(root, 'bin');
    fs.mkdirSync(binDir);
    fs.writeFileSync(path.join(binDir, 'src'), '#!/bin/sh\necho "host src-cli $*"\n', { mode: 0o755 });
    client = new CoordinatorClient({ frontendUrl: instance.url, frontendPassword: instance.password, executorName: 'hostile-cli', queueNames: ['batches'], multiQueue: false });
    await client.ping();
  });
  after(async () => {
    await instance.close();
    removeTempDir(root);
  });

  function deps(runtime: Runtime, env: Record<string, string> = {}): JobRunnerDeps {
    const config = loadConfig({
      EXECUTOR_FRONTEND_URL: instance.url,
      EXECUTOR_FRONTEND_PASSWORD: instance.password,
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_RUNTIME: runtime.name,
      EXECUTOR_WORKSPACE_DIR: path.join(root, 'workspaces'),
      EXECUTOR_STATE_DIR: path.join(root, 'state'),
      ...env,
    });
    return { config, client, runtime, log: createLogger({ level: 'silent' }), logFlushIntervalMs: 50, hostPath: `${binDir}:/usr/local/bin:/usr/bin:/bin` };
  }

  /** The exploit: a workspace file `src` (files are written executable) and PATH=. for the step. */
  function exploit(id: number, marker: string, env: string[] = ['PATH=.']): ExecutorJob {
    return testJob(id, {
      files: {
        src: { content: `#!/bin/sh\nid -u > ${marker}\n` },
        'evil.so': { content: 'not a library' },
      },
      cliSteps: [{ key: 'exec', command: ['batch', 'exec'], dir: '', env }],
    });
  }

  it('refuses cliSteps on the shell runtime without EXECUTOR_ALLOW_HOST_CLI_STEPS', async () => {
    const marker = path.join(root, 'ran-on-host-shell');
    const outcome = await runJob(exploit(401, marker), deps(new ShellRuntime()), new AbortController().signal);
    assert.equal(outcome.status, 'failed');
    assert.match('message' in outcome ? outcome.message : '', /cliSteps.*refused with the shell runtime unless EXECUTOR_ALLOW_HOST_CLI_STEPS=true/);
    assert.equal(fs.existsSync(marker), false, 'the job\'s own src ran on the host');
    await client.ping();
  });

  it('refuses cliSteps on an isolating runtime (bwrap), even with the opt-in', async (t) => {
    const stateDir = path.join(root, 'state');
    const runtime = new BwrapRuntime(makeRuntimeDeps({ runtime: 'bwrap', stateDir, registryMirrorUrls: [], network: 'none', limits: LIMITS }));
    const availability = await runtime.probe();
    if (!availability.available) return t.skip(availability.reason);
    const marker = path.join(root, 'ran-on-host-bwrap');
    const outcome = await runJob(exploit(402, marker), deps(runtime, { EXECUTOR_ALLOW_HOST_CLI_STEPS: 'true' }), new AbortController().signal);
    assert.equal(outcome.status, 'failed');
    assert.match('message' in outcome ? outcome.message : '', /cliSteps.*refused with the bwrap runtime/);
    assert.equal(fs.existsSync(marker), false, 'the job\'s own src ran on the host');
    const workspaces = path.join(root, 'workspaces');
    assert.deepEqual(fs.existsSync(workspaces) ? fs.readdirSync(workspaces) : [], []);
    await client.ping();
  });

  it('with the opt-in on shell, runs the host\'s src whatever PATH or LD_PRELOAD the job sets', async () => {
    const marker = path.join(root, 'ran-on-host-opted-in');
    const job = exploit(403, marker, ['PATH=.', 'LD_PRELOAD=./evil.so', 'FOO=bar']);
    const outcome = await runJob(job, deps(new ShellRuntime(), { EXECUTOR_ALLOW_HOST_CLI_STEPS: 'true' }), new AbortController().signal);
    assert.deepEqual(outcome, { status: 'completed' });
    assert.equal(fs.existsSync(marker), false, 'the job\'s own src ran on the host');
    const entry = instance.logs.get(403)!.find((e) => e.key === 'step.src.exec')!;
    assert.equal(entry.out, 'stdout: host src-cli batch exec\n');
    await client.ping();
  });
});
