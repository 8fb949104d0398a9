/**
 * EXECUTOR_NETWORK=public on the VM runtimes (qemu, and firecracker with the Firecracker stand-in
 * that boots its guest under QEMU, jailed when root, so its tap and --netns are exercised), in this process (an executor process refuses to
 * wire job networks to the host under the test runner): the runtime gets a test uplink into a
 * test upstream namespace, a job dequeued from a real coordinator is prepared (one VM boot), and
 * its one step probes the public stand-in, the job resolver and every blocked address.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildTestImages, emptyWorkspace, makeTempDir, removeTempDir, startRegistry, taggedJobId, type TestRegistry } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { buildRedactions, CoordinatorClient, Redactor, type ExecutorJob, type JobLogContext } from '../../src/index.js';
import { capture } from '../../src/process/run.js';
import type { RuntimeConfig, Sandbox } from '../../src/sandbox/runtime.js';
import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { NETWORK_RECORD_FILE, VM_DIR_PREFIX } from '../../src/sandbox/vm/janitor.js';
import { FAKE_FIRECRACKER_QEMU_BIN, FAKE_JAILER_BIN } from '@sandfleet/test-helpers/fake-firecracker';
import { firecrackerLauncher } from '../../src/sandbox/vm/firecracker.js';
import type { GuestImage } from '../../src/sandbox/vm/guest-image.js';
import { vmRunDir } from '../../src/sandbox/vm/install.js';
import { QemuRuntime } from '../../src/sandbox/vm/qemu-runtime.js';
import { VmSandbox } from '../../src/sandbox/vm/vm-sandbox.js';
import { assertAllBlocked, BLOCKED, blockedProbeScript, OUTSIDE, startUpstream, tcp, type TestUpstream } from '../sandbox/upstream.js';
import { installCachedGuestImage } from './fixtures.js';

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

async function netnsNames(): Promise<string[]> {
  return (await capture(['ip', 'netns', 'list'], { env: ENV })).stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

describe('the qemu runtime with EXECUTOR_NETWORK=public (upstream is a test namespace)', { timeout: 300_000 }, () => {
  let upstream: TestUpstream;
  let registry: TestRegistry;
  let coordinator: CoordinatorServer;
  let client: CoordinatorClient;
  let stateDir: string;
  let workspaceDir: string;
  let sandbox: Sandbox | undefined;
  let image: GuestImage;

  before(async () => {
    stateDir = makeTempDir('sandfleet-qemu-net-');
    let testImages;
    [image, testImages] = await Promise.all([installCachedGuestImage(stateDir), buildTestImages()]);
    [upstream, registry, coordinator] = await Promise.all([startUpstream(), startRegistry(), startCoordinatorServer('pglite')]);
    // Image root: it may open the raw socket ping needs, so ICMP is probed too.
    await registry.push('test/busybox-root', '1', testImages.busyboxRoot);
    client = new CoordinatorClient({
      frontendUrl: coordinator.url,
      frontendPassword: ACCESS_TOKEN,
      executorName: 'qemu-network-test',
      queueNames: ['batches'],
      multiQueue: false,
      retryAttempts: 2,
      retryBaseDelayMs: 10,
    });
    // Registers the executor: the instance takes job tokens only from executors it knows.
    await client.ping();
    workspaceDir = await emptyWorkspace();
  });

  after(async () => {
    await sandbox?.teardown();
    await coordinator?.close();
    await registry?.stop();
    await upstream?.stop();
    if (workspaceDir) fs.rmSync(workspaceDir, { recursive: true, force: true });
    if (stateDir) removeTempDir(stateDir);
  });

  const publicRuntime = (diskBytes: number, vmm: 'qemu' | 'firecracker' = 'qemu') => {
    const config: RuntimeConfig = {
      runtime: 'qemu',
      stateDir,
      registryMirrorUrls: [],
      imageStore: { allowedPrivateRegistries: ['127.0.0.1'] },
      network: 'public',
      limits: { cpus: 1, memoryBytes: 256 << 20, pids: 256, diskBytes },
    };
    const deps = makeRuntimeDeps(config, { uplink: upstream.uplink });
    if (vmm === 'qemu') return new QemuRuntime(deps);
    const runDir = vmRunDir(stateDir);
    const jailer = process.getuid?.() === 0 ? FAKE_JAILER_BIN : undefined;
    const launcher = firecrackerLauncher({ ...config, runtime: 'firecracker' }, { firecracker: FAKE_FIRECRACKER_QEMU_BIN, jailer, notes: [] }, image, runDir, 180_000);
    return { runDir, prepare: async (options: Parameters<QemuRuntime['prepare']>[0]) => new VmSandbox(deps, options, launcher) };
  };
  const workspaceRequest = (job: ExecutorJob) => {
    const ctx: JobLogContext = { client, job, redactor: new Redactor(buildRedactions(ACCESS_TOKEN, {}, [job.token])), flushIntervalMs: 100 };
    return { ctx, job, frontendUrl: coordinator.url, jobHeaders: client.jobHeaders(job), getFile: () => { throw new Error('the job has no files'); }, host: { path: ENV.PATH } };
  };
  const dequeue = async (body: Record<string, unknown>): Promise<ExecutorJob> => {
    const { id } = await coordinator.admin('POST', '/api/jobs', { queue: 'batches', ...body });
    const job = await client.dequeue();
    assert.equal(job?.id, id);
    return job!;
  };
  /** The netns names a job id leads to start with this (jobKey adds a random suffix). */
  const netnsPrefixes = (jobId: string) => {
    const safe = jobId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 20);
    return [`sfj-${safe}-`, `sfr-${safe}-`];
  };

  for (const vmm of ['qemu', 'firecracker'] as const) it(`${vmm}: one VM reaches the public stand-in, resolves through the job resolver, every blocked address fails; teardown leaves no netns or VM dir`, async () => {
    const imageRef = `${registry.host}/test/busybox-root:1`;
    const commands = [
      'set +e',
      tcp(OUTSIDE.public),
      'cat /etc/resolv.conf',
      // No server given: the name goes to the resolver in the step's resolv.conf.
      'busybox nslookup example.com',
      blockedProbeScript(BLOCKED, { icmp: true }),
    ];
    const job = await dequeue({ dockerSteps: [{ key: 'net', image: imageRef, commands }] });
    const runtime = publicRuntime(256 << 20, vmm);
    const jobId = taggedJobId(`${vmm}-net-${job.id}`);
    const signal = AbortSignal.timeout(240_000);
    sandbox = await runtime.prepare({ jobId, workspaceDir, signal, progress: () => {} });
    const [script] = await sandbox.prepareWorkspace!(workspaceRequest(job), signal);

    const [vmName] = fs.readdirSync(runtime.runDir).filter((n) => n.startsWith(VM_DIR_PREFIX));
    assert.ok(vmName, 'a VM directory while the job runs');
    const vmDir = path.join(runtime.runDir, vmName);
    const { namespaces } = JSON.parse(fs.readFileSync(path.join(vmDir, NETWORK_RECORD_FILE), 'utf8')) as { namespaces: string[] };
    assert.equal(namespaces.length, 2, 'the job namespace and its router');
    assert.ok(namespaces.every((n) => n.endsWith(namespaces[0]!.slice(4))), namespaces.join(' '));

    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const result = await sandbox.run({ key: 'step.docker.net', image: imageRef, scriptPath: script!, dir: '', env: [] }, { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c), signal });
    const stdout = Buffer.concat(out).toString();
    const detail = `${stdout}\n${Buffer.concat(err).toString()}`;
    assert.equal(result.exitCode, 0, detail);
    assert.match(stdout, /hello from 203\.0\.113\.10/, detail);
    assert.match(stdout, /^nameserver 10\.53\.0\.53$/m, detail);
    assert.match(stdout, /Server:\s+10\.53\.0\.53[\s\S]*Address: 203\.0\.113\.10/, detail);
    assertAllBlocked(stdout, BLOCKED, { icmp: true });

    await sandbox.teardown();
    sandbox = undefined;
    const left = await netnsNames();
    assert.ok(!namespaces.some((n) => left.includes(n)), `left: ${left.join(' ')}`);
    assert.equal(fs.existsSync(vmDir), false, 'the VM directory is gone');
  });

  it('a boot that fails once the job network exists removes it (and the VM directory) before it throws', async () => {
    const imageRef = `${registry.host}/test/busybox-root:1`;
    const job = await dequeue({ dockerSteps: [{ key: 'net', image: imageRef, commands: ['true'] }] });
    const runtime = publicRuntime(4 << 20);
    const jobId = taggedJobId(`qemu-fail-${job.id}`);
    const big = await emptyWorkspace();
    try {
      // Larger than the 4 MiB workspace disk: making the disk fails after the network was wired.
      fs.writeFileSync(path.join(big, 'too-big'), Buffer.alloc(8 << 20, 1));
      const failing = await runtime.prepare({ jobId, workspaceDir: big, signal: AbortSignal.timeout(120_000), progress: () => {} });
      await assert.rejects(failing.prepareWorkspace!(workspaceRequest(job), AbortSignal.timeout(120_000)), /does not fit in its 4 MiB disk/);
      const prefixes = netnsPrefixes(jobId);
      const left = (await netnsNames()).filter((n) => prefixes.some((p) => n.startsWith(p)));
      assert.deepEqual(left, [], 'no namespace of the failed job');
      assert.deepEqual(fs.readdirSync(runtime.runDir).filter((n) => n.startsWith(VM_DIR_PREFIX)), []);
      assert.deepEqual(fs.readdirSync(path.join(stateDir, 'network', 'slots')), [], 'its uplink slot is free again');
      await failing.teardown();
    } finally {
      fs.rmSync(big, { recursive: true, force: true });
    }
  });
});
