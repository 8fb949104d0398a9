import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basicEnv, spawnProcess, startExecutorProcess, type ExecutorProcess } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, ADMIN_TOKEN, SANDFLEET_BIN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { testBackends } from '@sandfleet/test-helpers/db';

const backend = testBackends()[0]!;

describe('sandfleet CLI output', () => {
  it('--version prints the package version', () => {
    const result = spawnSync(process.execPath, [SANDFLEET_BIN, '--version'], { encoding: 'utf8', env: basicEnv({}) });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), '0.1.0');
  });

  it('migrate takes its data directory from SANDFLEET_DATA_DIR when --data-dir is not given', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sf-datadir-'));
    try {
      const result = spawnSync(process.execPath, [SANDFLEET_BIN, 'migrate'], { encoding: 'utf8', env: basicEnv({ SANDFLEET_DATA_DIR: dataDir }), cwd: dataDir + '/..' });
      assert.equal(result.status, 0, result.stderr);
      assert.ok(fs.existsSync(path.join(dataDir, 'pglite')), `the embedded database is in ${dataDir}`);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  describe(`to a closed pipe (${backend})`, () => {
    let coordinator: CoordinatorServer;
    let executor: ExecutorProcess;
    before(async () => {
      coordinator = await startCoordinatorServer(backend);
      executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, { EXECUTOR_RUNTIME: 'shell', EXECUTOR_QUEUE_POLL_INTERVAL: '200ms' });
    });
    after(async () => {
      await executor?.stop();
      await coordinator?.close();
    });

    it('`jobs logs <id> | head -1` exits quietly', async () => {
      const job = await coordinator.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['seq 1 50000'] }] });
      for (let state = ''; !['completed', 'failed', 'errored'].includes(state); await new Promise((r) => setTimeout(r, 300))) {
        state = (await coordinator.admin('GET', `/api/jobs/${job.id}`)).state;
      }
      // Asynchronously: the coordinator answering the CLI runs in this process.
      const pipeline = spawnProcess('bash', ['-c', `set -o pipefail; "${process.execPath}" "${SANDFLEET_BIN}" jobs logs ${job.id} | head -1`], basicEnv({ SANDFLEET_URL: coordinator.url, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN }));
      const status = await pipeline.exit;
      assert.match(pipeline.output(), /^── /);
      assert.doesNotMatch(pipeline.output(), /EPIPE|Error/);
      assert.equal(status, 0, pipeline.output());
    });
  });
});
