/**
 * Jobs in Firecracker VMs, end to end as far as this host allows: a real coordinator, the executor's
 * worker loop, the test image from a local registry, and the firecracker runtime's own sandbox and
 * launcher (disks in order, the agent over vsock). The VMM is the fake Firecracker that enforces
 * the API schema and boots what it was configured with under QEMU, splicing vsock CONNECTs onto the
 * guest's loopback bridge; KVM and Firecracker's own devices are what is not real here. The runtime's
 * KVM check is passed over (this host has none), so the sandbox is built from its launcher.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createGitRepository, makeTempDir, removeTempDir, waitFor, type TestRegistry } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, waitForJobState, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { FAKE_FIRECRACKER_QEMU_BIN, FAKE_JAILER_BIN } from '@sandfleet/test-helpers/fake-firecracker';
import { Agent, CoordinatorClient, connectionOptions, createLogger, loadConfig } from '../../src/index.js';
import type { Runtime } from '../../src/sandbox/runtime.js';
import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { firecrackerLauncher } from '../../src/sandbox/vm/firecracker.js';
import { VmSandbox } from '../../src/sandbox/vm/vm-sandbox.js';
import { assertTwoStepJobRanInVm, cachedGuestImage, startVmJobServices, vmJobExecutorEnv, logsOf, submitJob, twoStepJob, vmDirsIn } from './fixtures.js';


const asRoot = process.getuid?.() === 0;

describe('the firecracker runtime through a real coordinator (Firecracker stand-in booting under QEMU)', { timeout: 420_000 }, () => {
  let coordinator: CoordinatorProcess;
  let registry: TestRegistry;
  let stateDir: string;
  let runDir: string;
  let imageRef: string;
  let agent: Agent | undefined;
  let agentDone: Promise<void> | undefined;
  const repo = createGitRepository({ 'README.md': 'cloned into the firecracker workspace\n' });
  const vmDirs = () => vmDirsIn(runDir);
  const submit = (body: Record<string, unknown>) => submitJob(coordinator, body);
  const logLines: string[] = [];

  before(async () => {
    stateDir = makeTempDir('sandfleet-fc-jobs-');
    runDir = path.join(stateDir, 'vm-run');
    const image = await cachedGuestImage();
    ({ registry, imageRef, coordinator } = await startVmJobServices({ name: 'github.com/sandfleet/fc', source: repo.path }));

    const config = loadConfig({
      EXECUTOR_FRONTEND_URL: coordinator.url,
      EXECUTOR_FRONTEND_PASSWORD: ACCESS_TOKEN,
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_RUNTIME: 'firecracker',
      EXECUTOR_FIRECRACKER_BIN: FAKE_FIRECRACKER_QEMU_BIN,
      EXECUTOR_WORKSPACE_DIR: stateDir,
      ...vmJobExecutorEnv(stateDir, registry.host),
    });
    const deps = makeRuntimeDeps(config.runtimeConfig);
    // The jailer stand-in needs root (it chowns the chroot); then the VMM runs jailed, as in production.
    const binaries = { firecracker: FAKE_FIRECRACKER_QEMU_BIN, jailer: asRoot ? FAKE_JAILER_BIN : undefined, notes: [] };
    const launcher = firecrackerLauncher(config.runtimeConfig, binaries, image, runDir, 180_000);
    const runtime: Runtime = {
      name: 'firecracker',
      isolating: true,
      probe: async () => ({ available: true, reason: 'the Firecracker stand-in under QEMU' }),
      prepare: async (options) => new VmSandbox(deps, options, launcher),
    };
    const log = createLogger({ level: 'info', destination: { write: (line: string) => void logLines.push(line) } });
    agent = new Agent({ config, client: new CoordinatorClient(connectionOptions(config)), runtime, log, logFlushIntervalMs: 200 });
    agentDone = agent.run();
  });

  after(async () => {
    agent?.drain('the test is over');
    agent?.abortJobs();
    await agentDone;
    await coordinator?.stop();
    await registry?.stop();
    if (stateDir) removeTempDir(stateDir);
  });

  it(`runs a two-step job with a clone and a secret to completed, disks found by order, agent over vsock${asRoot ? ', jailed' : ''}`, async () => {
    const secret = 'fc-secret-value-7781';
    const id = await submit(twoStepJob({ repositoryName: 'github.com/sandfleet/fc', commit: repo.commit, image: imageRef, secret, secondCommands: ['cat /proc/cmdline'] }));
    const job = await waitForJobState(coordinator, id, ['completed', 'failed', 'errored'], 240_000);
    assert.equal(job.state, 'completed', `${JSON.stringify(job, null, 2)}\n${logLines.slice(-20).join('')}`);
    const second = assertTwoStepJobRanInVm(job, /stdout: cloned into the firecracker workspace/);
    assert.match(second, /sandfleet\.agent=vsock/, 'the guest was told to serve its agent on vsock');
    const boot = /microVM up in \d+ ms \(booted\): firecracker[^"\\]*/.exec(JSON.stringify(logsOf(job)))?.[0];
    assert.ok(boot, 'the boot log line');
    process.stderr.write(`# ${boot}\n`);
    if (asRoot) assert.match(boot, /firecracker, jailed/);
    assert.ok(!JSON.stringify(logsOf(job)).includes(secret), 'the secret must not reach the logs');
    await waitFor('the VM directory to be removed', () => vmDirs().length === 0, 10_000);
  });

  it('stops the VM within 10 s of a cancel', async () => {
    const id = await submit({ dockerSteps: [{ key: 'sleeper', image: imageRef, commands: ['echo started', 'sleep 600'] }] });
    await waitFor(`job ${id} to start its step`, async () => /started/.test(JSON.stringify(logsOf((await coordinator.api('GET', `/api/jobs/${id}`)).body))), 240_000, 250);
    assert.equal(vmDirs().length, 1, 'one VM directory while the job runs');
    const canceled = Date.now();
    assert.equal((await coordinator.api('POST', `/api/jobs/${id}/cancel`)).status, 200);
    await waitFor('the VM to be gone', () => vmDirs().length === 0, 10_000, 100);
    process.stderr.write(`# cancel to VM gone: ${Date.now() - canceled} ms\n`);
    const job = await waitForJobState(coordinator, id, ['canceled', 'failed', 'completed', 'errored'], 15_000);
    assert.equal(job.state, 'canceled');
  });
});
