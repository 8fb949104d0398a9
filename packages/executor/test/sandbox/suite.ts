/**
 * The one behavioural suite every isolating image runtime must pass, against real sandboxes: a
 * local registry with the fixture images, and (for network tests) a test upstream namespace.
 * `defineSandboxSuite('bwrap', …)` in a runtime's test file runs it; the runtime is skipped only
 * when its probe says the host lacks it, and the reason is printed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ID_SHIFT } from '../../src/image/ids.js';
import type { RuntimeDeps } from '../../src/sandbox/shared/host.js';
import type { JobLimits, Runtime, RuntimeConfig, Sandbox, SandboxOptions, StepResult, StepSpec } from '../../src/sandbox/runtime.js';
import { buildTestImages, emptyWorkspace, freePort, makeTempDir, startRegistry, taggedJobId, TEST_TAG, writeScripts, type TestImages, type TestRegistry } from '@sandfleet/test-helpers';
import { assertAllBlocked, BLOCKED, blockedProbeScript, OUTSIDE, startUpstream, tcp, udp, type TestUpstream } from './upstream.js';

export const LIMITS: JobLimits = { cpus: 1, memoryBytes: 64 * 1024 * 1024, pids: 64, diskBytes: 64 * 1024 * 1024 };

export interface SuiteOptions {
  makeRuntime: (config: RuntimeConfig, overrides: Partial<Omit<RuntimeDeps, 'config'>>) => Runtime;
  limits?: Partial<JobLimits>;
  /**
   * How image root is kept from being host root: `userns` (mapped to host uid `rootHostUid`, the
   * default) or `gvisor` (root only inside gVisor's kernel).
   */
  rootConfinement?: 'userns' | 'gvisor';
  /** Host uid of image root under `userns`; default ID_SHIFT (100000). */
  rootHostUid?: () => number;
  /** Extra set-up before and cleanup after the suite (e.g. start and stop dockerd). */
  before?: () => Promise<void>;
  after?: () => Promise<void>;
  /** Runtime-specific tests, run with the suite's registry, images and helpers. */
  extraTests?: (ctx: SuiteContext) => void;
}

/** What `extraTests` get: the suite's fixtures (valid once its `before` ran) and helpers. */
export interface SuiteContext {
  runtime: () => Runtime;
  registry: () => TestRegistry;
  images: () => TestImages;
  stateDir: () => string;
  /** `test/busybox:1` in the suite's registry (user 1000:1000). */
  image: () => string;
  /** `test/busybox-root:1` (user root). */
  rootImage: () => string;
  prepare: (scripts: Record<string, string>, overrides?: Partial<SandboxOptions>, rt?: Runtime) => Promise<{ sandbox: Sandbox; workspaceDir: string; progress: string[]; jobId: string }>;
  run: (sandbox: Sandbox, script: string, options?: { image?: string; dir?: string; env?: string[]; signal?: AbortSignal }) => Promise<StepOutput>;
  /** `it` that is skipped when the runtime is not available here. */
  test: (title: string, fn: () => Promise<void>) => void;
}

export interface StepOutput extends StepResult {
  stdout: string;
  stderr: string;
}

/** Pids of host processes whose cgroup is below `sandfleet/<key of jobId>`. */
export async function processesInJobCgroup(jobId: string): Promise<number[]> {
  const prefix = `/sandfleet/${jobId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 20)}-`;
  const out: number[] = [];
  for (const pid of (await fs.readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cg = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
    if (cg.includes(prefix)) out.push(Number(pid));
  }
  return out;
}

export function defineSandboxSuite(name: string, suite: SuiteOptions): void {
  describe(`${name} sandbox`, { concurrency: false }, () => {
    let registry: TestRegistry;
    let authRegistry: TestRegistry;
    let upstream: TestUpstream;
    let stateDir: string;
    let runtime: Runtime;
    let images: TestImages;
    let skip: string | undefined;
    const workspaces: string[] = [];
    const limits = { ...LIMITS, ...suite.limits };

    const config = (overrides: Partial<RuntimeConfig> = {}): RuntimeConfig => ({
      runtime: name as RuntimeConfig['runtime'],
      stateDir,
      registryMirrorUrls: [],
      // The test registries listen on loopback, which pulls may only reach when allowed.
      imageStore: { allowedPrivateRegistries: ['127.0.0.1'] },
      network: 'public',
      limits,
      ...overrides,
    });

    before(async () => {
      stateDir = makeTempDir(`sandfleet-${name}-`);
      await suite.before?.();
      runtime = suite.makeRuntime(config(), {});
      const availability = await runtime.probe();
      if (!availability.available) {
        skip = availability.reason;
        console.log(`# SKIP ${name}: ${skip}`);
        return;
      }
      console.log(`# ${name}: ${availability.reason}`);
      images = await buildTestImages();
      [registry, authRegistry, upstream] = await Promise.all([startRegistry(), startRegistry({ auth: { username: 'ci', password: 'right-password' } }), startUpstream()]);
      await registry.push('test/busybox', '1', images.busybox);
      await registry.push('test/busybox-root', '1', images.busyboxRoot);
      await authRegistry.push('private/busybox', '1', images.busyboxRoot);
      runtime = suite.makeRuntime(config(), { uplink: upstream.uplink });
    });

    after(async () => {
      await registry?.stop();
      await authRegistry?.stop();
      await upstream?.stop();
      await suite.after?.();
      for (const ws of workspaces) await fs.rm(ws, { recursive: true, force: true });
      await fs.rm(stateDir, { recursive: true, force: true });
    });

    const image = () => `${registry.host}/test/busybox:1`;
    const rootImage = () => `${registry.host}/test/busybox-root:1`;

    async function prepare(scripts: Record<string, string>, overrides: Partial<SandboxOptions> = {}, rt = runtime) {
      const workspaceDir = await emptyWorkspace();
      workspaces.push(workspaceDir);
      const progress: string[] = [];
      // Tagged: the netns, cgroup and mounts made for it are then attributed to this test process.
      const jobId = taggedJobId(`${name}-${path.basename(workspaceDir)}`);
      const sandbox = await rt.prepare({
        jobId,
        workspaceDir,
        progress: (l) => progress.push(l),
        signal: AbortSignal.timeout(120_000),
        ...overrides,
      });
      // The workspace is prepared into the sandbox, after it exists.
      await writeScripts(sandbox.workspaceDir, scripts);
      return { sandbox, workspaceDir, progress, jobId };
    }

    async function run(sandbox: Sandbox, script: string, options: { image?: string; dir?: string; env?: string[]; signal?: AbortSignal } = {}): Promise<StepOutput> {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const step: StepSpec = { key: `step.${script}`, image: options.image ?? image(), scriptPath: `.sourcegraph-executor/${script}`, dir: options.dir ?? '', env: options.env ?? [] };
      const result = await sandbox.run(step, { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c), signal: options.signal ?? AbortSignal.timeout(60_000) });
      return { ...result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
    }

    const test = (title: string, fn: () => Promise<void>) => it(title, async (t) => {
      if (skip) return t.skip(skip);
      await fn();
    });

    test('runs two steps in the pulled image; step 2 reads what step 1 wrote under /data', async () => {
      const { sandbox, workspaceDir, progress } = await prepare({
        '1.sh': 'mkdir -p sub && echo "from step 1" > sub/note; id -u; pwd; echo "$IMAGE_VAR $STEP_VAR"; cat /opt/stuff/new; test ! -e /etc/removed',
        '2.sh': 'cat note; pwd; touch "$HOME/written-outside-data" && echo wrote-root-layer',
      });
      try {
        const one = await run(sandbox, '1.sh', { env: ['STEP_VAR=from-step'] });
        assert.equal(one.exitCode, 0, one.stderr);
        assert.equal(one.stdout, '1000\n/data\nfrom-image from-step\nfrom layer 2\n');
        const two = await run(sandbox, '2.sh', { dir: 'sub' });
        assert.equal(two.exitCode, 0, two.stderr);
        assert.equal(two.stdout, 'from step 1\n/data/sub\nwrote-root-layer\n');
        assert.ok(progress.some((l) => l.startsWith(`pulling ${image()}`)), progress.join('\n'));
        // The host sees the step's files in the workspace during the job.
        assert.equal(await fs.readFile(path.join(workspaceDir, 'sub/note'), 'utf8'), 'from step 1\n');
      } finally {
        await sandbox.teardown();
      }
      // The image cache was not written to.
      for (const kind of await fs.readdir(path.join(stateDir, 'images')).catch(() => [] as string[])) {
        if (!kind.startsWith('rootfs')) continue;
        for (const r of await fs.readdir(path.join(stateDir, 'images', kind))) {
          assert.equal(existsSync(path.join(stateDir, 'images', kind, r, 'home/user/written-outside-data')), false);
        }
      }
    });

    test('kills a memory hog and says it ran out of memory', async () => {
      const { sandbox } = await prepare({ 'hog.sh': 'echo start; dd if=/dev/zero of=/dev/null bs=256M count=1; echo survived' });
      try {
        const r = await run(sandbox, 'hog.sh');
        assert.notEqual(r.exitCode, 0);
        assert.doesNotMatch(r.stdout, /survived/);
        assert.equal(r.failure, 'killed: out of memory (limit 64 MiB)', `${r.exitCode} ${r.stdout} ${r.stderr}`);
      } finally {
        await sandbox.teardown();
      }
    });

    test('contains a fork bomb', async () => {
      const { sandbox, jobId } = await prepare({ 'bomb.sh': 'set +e; bomb() { bomb | bomb & }; bomb; sleep 3; echo "still here"' });
      try {
        const started = Date.now();
        const r = await run(sandbox, 'bomb.sh', { signal: AbortSignal.timeout(30_000) });
        assert.ok(Date.now() - started < 30_000);
        // Either the shell survives its failed forks, or (gVisor) the whole sandbox dies at a limit.
        assert.ok(/still here|can't fork|Resource temporarily unavailable/.test(r.stdout + r.stderr) || /^(process limit reached|killed: out of memory)/.test(r.failure ?? ''), `${r.exitCode} ${r.failure} ${r.stdout} ${r.stderr}`);
        // Nothing of the job survives its step (docker keeps its own cgroups: checked by `docker rm`).
        assert.deepEqual(await processesInJobCgroup(jobId), []);
      } finally {
        await sandbox.teardown();
      }
    });

    test('fails to fill the disk beyond its limit without filling the host', async () => {
      const hostFree = async () => (await fs.statfs(stateDir)).bavail * (await fs.statfs(stateDir)).bsize;
      const before = await hostFree();
      const { sandbox } = await prepare({ 'fill.sh': 'set +e; dd if=/dev/zero of=/data/fill bs=1M count=200 2>&1; echo "data=$?"; dd if=/dev/zero of=/var/tmp/fill bs=1M count=200 2>&1; echo "root=$?"' });
      try {
        const r = await run(sandbox, 'fill.sh');
        assert.match(r.stdout, /No space left on device[\s\S]*data=1/);
        assert.match(r.stdout, /root=1/);
        assert.ok(before - (await hostFree()) < 100 * 1024 * 1024, 'the host lost less than 100 MB');
      } finally {
        await sandbox.teardown();
      }
    });

    test('kills a step that runs over its time limit through the abort signal', async () => {
      const { sandbox, workspaceDir } = await prepare({ 'warm.sh': 'true', 'slow.sh': 'echo started; touch /data/started; sleep 600; echo finished' });
      try {
        // A first step pulls the image and sets the sandbox up, so the limit below hits the running
        // step itself, not its set-up (an abort during set-up is a runtime's own test).
        assert.equal((await run(sandbox, 'warm.sh')).exitCode, 0);
        // The limit expires once the step is seen running (it made /data/started), as a timeout would.
        const limit = new AbortController();
        const watch = setInterval(() => {
          if (existsSync(path.join(workspaceDir, 'started'))) limit.abort(new DOMException('step time limit', 'TimeoutError'));
        }, 50);
        let expired = 0;
        limit.signal.addEventListener('abort', () => (expired = Date.now()));
        try {
          const r = await run(sandbox, 'slow.sh', { signal: AbortSignal.any([limit.signal, AbortSignal.timeout(60_000)]) });
          const took = Date.now() - expired;
          assert.ok(expired > 0 && took < 10_000, `ended ${took} ms after the limit expired`);
          assert.notEqual(r.exitCode, 0);
          assert.equal(r.failure, 'killed: time limit exceeded');
          assert.match(r.stdout, /started/);
          assert.doesNotMatch(r.stdout, /finished/);
        } finally {
          clearInterval(watch);
        }
      } finally {
        await sandbox.teardown();
      }
    });

    test('cannot read host files outside its mounts', async () => {
      const secretDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-secret-'));
      const secret = path.join(secretDir, 'secret');
      await fs.writeFile(secret, 'host secret\n');
      await fs.chmod(secretDir, 0o755);
      await fs.chmod(secret, 0o644);
      const { sandbox } = await prepare({ 'peek.sh': `set +e; cat ${secret}; cat /proc/1/root${secret}; ls /proc/1/root${secretDir}; cat /etc/shadow; echo done` });
      try {
        const r = await run(sandbox, 'peek.sh');
        assert.doesNotMatch(r.stdout, /host secret/);
        assert.equal(r.stdout, 'done\n');
      } finally {
        await sandbox.teardown();
        await fs.rm(secretDir, { recursive: true, force: true });
      }
    });

    test('cannot see another concurrent job\'s workspace', async () => {
      const [a, b] = await Promise.all([
        prepare({ 'a.sh': 'echo secret-of-a > mine; sleep 1; ls /data' }),
        prepare({ 'b.sh': 'set +e; sleep 0.3; ls /data; find / -name mine 2>/dev/null; ps -o pid,comm 2>/dev/null | grep -c sleep; echo done' }),
      ]);
      try {
        const [ra, rb] = await Promise.all([run(a.sandbox, 'a.sh'), run(b.sandbox, 'b.sh')]);
        assert.equal(ra.exitCode, 0, ra.stderr);
        assert.doesNotMatch(rb.stdout, /mine/);
        assert.match(rb.stdout, /done/);
        // b's own `sleep 0.3` is gone by then; a's `sleep 1` must not be visible.
        assert.match(rb.stdout, /(^|\n)0\ndone\n$/);
      } finally {
        await a.sandbox.teardown();
        await b.sandbox.teardown();
      }
    });

    test('is not root on the host even when root in the image', async () => {
      const { sandbox, workspaceDir } = await prepare({ 'root.sh': 'set +e; id -u; touch /data/made-by-root; cat /proc/self/uid_map; echo 1 > /proc/sys/kernel/panic 2>/dev/null || echo "proc-sys denied"; mount -t tmpfs none /mnt 2>/dev/null || echo "mount denied"; touch /etc/root-can-write-its-layer && echo "etc writable"; dmesg 2>/dev/null | head -n 1' });
      try {
        const r = await run(sandbox, 'root.sh', { image: rootImage() });
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(r.stdout, /^0\n/);
        assert.match(r.stdout, /proc-sys denied/);
        assert.match(r.stdout, /etc writable/);
        if (suite.rootConfinement === 'gvisor') {
          // Root, but of gVisor's kernel: the host kernel never sees its syscalls.
          assert.match(r.stdout, /Starting gVisor/);
        } else {
          assert.match(r.stdout, /mount denied/);
          const rootHostUid = suite.rootHostUid?.() ?? ID_SHIFT;
          const st = await fs.stat(path.join(workspaceDir, 'made-by-root'));
          assert.equal(st.uid, rootHostUid, `image root writes files as host uid ${rootHostUid}`);
        }
      } finally {
        await sandbox.teardown();
      }
    });

    test('reaches a public address but not metadata, private ranges or the host (TCP and UDP)', async () => {
      const { sandbox } = await prepare({
        'allowed.sh': `${tcp(OUTSIDE.public)}; ${udp(OUTSIDE.public)}; cat /etc/resolv.conf; ${udp(OUTSIDE.dns)}`,
        'blocked.sh': blockedProbeScript(BLOCKED, { icmp: false }),
      });
      try {
        const ok = await run(sandbox, 'allowed.sh');
        assert.match(ok.stdout, /hello from 203\.0\.113\.10/);
        assert.match(ok.stdout, /Server:\s+203\.0\.113\.10[\s\S]*Address: 203\.0\.113\.10/);
        assert.match(ok.stdout, /nameserver 10\.53\.0\.53/);
        const blocked = await run(sandbox, 'blocked.sh');
        assertAllBlocked(blocked.stdout, BLOCKED, { icmp: false });
      } finally {
        await sandbox.teardown();
      }
    });

    test('has only loopback with network none', async () => {
      const { sandbox } = await prepare({ 'none.sh': `set +e; cat /proc/net/dev | tail -n +3 | cut -d: -f1; ${tcp(OUTSIDE.public)} 2>&1` }, {}, suite.makeRuntime(config({ network: 'none' }), { uplink: upstream.uplink }));
      try {
        const r = await run(sandbox, 'none.sh');
        assert.match(r.stdout, /^\s*lo\n/);
        assert.doesNotMatch(r.stdout, /eth0|hello from/);
      } finally {
        await sandbox.teardown();
      }
    });

    test('pulls through a mirror when the image\'s registry is unreachable', async () => {
      const dead = await freePort();
      const mirrored = suite.makeRuntime(config({ registryMirrorUrls: [`127.0.0.1:${dead}=${registry.url}`], stateDir: await fs.mkdtemp(path.join(stateDir, 'mirror-')) }), { uplink: upstream.uplink });
      const { sandbox, progress } = await prepare({ 'm.sh': 'echo via mirror' }, {}, mirrored);
      try {
        const r = await run(sandbox, 'm.sh', { image: `127.0.0.1:${dead}/test/busybox:1` });
        assert.equal(r.stdout, 'via mirror\n', r.stderr);
        assert.ok(progress.some((l) => l.includes(`mirror ${registry.url}`)), progress.join('\n'));
      } finally {
        await sandbox.teardown();
      }
    });

    test('fails clearly with a wrong registry credential', async () => {
      const wrong = { auths: { [authRegistry.host]: { auth: Buffer.from('ci:wrong-password').toString('base64') } } };
      const { sandbox } = await prepare({ 'p.sh': 'echo private' }, { dockerAuth: wrong });
      try {
        await assert.rejects(run(sandbox, 'p.sh', { image: `${authRegistry.host}/private/busybox:1` }),
          /cannot pull 127\.0\.0\.1:\d+\/private\/busybox:1 from 127\.0\.0\.1:\d+: .*rejected the credentials for user "ci"/);
      } finally {
        await sandbox.teardown();
      }
      const right = { auths: { [authRegistry.host]: { auth: Buffer.from('ci:right-password').toString('base64') } } };
      const ok = await prepare({ 'p.sh': 'echo private' }, { dockerAuth: right });
      try {
        const r = await run(ok.sandbox, 'p.sh', { image: `${authRegistry.host}/private/busybox:1` });
        assert.equal(r.stdout, 'private\n', r.stderr);
      } finally {
        await ok.sandbox.teardown();
      }
    });

    suite.extraTests?.({
      runtime: () => runtime,
      registry: () => registry,
      images: () => images,
      stateDir: () => stateDir,
      image,
      rootImage,
      prepare,
      run,
      test,
    });

    test('leaves no namespaces, cgroups or mounts behind', async () => {
      const ns = await fs.readdir('/run/netns').catch(() => [] as string[]);
      assert.deepEqual(ns.filter((n) => n.startsWith('sfj-') || n.startsWith('sfr-')).filter((n) => n.includes(name) && n.includes(TEST_TAG)), []);
      const mounts = await fs.readFile('/proc/self/mountinfo', 'utf8');
      assert.doesNotMatch(mounts, new RegExp(stateDir.replace(/[/.]/g, '\\$&') + '/jobs/'));
      const cg = await fs.readdir('/sys/fs/cgroup/memory/sandfleet').catch(() => [] as string[]);
      assert.deepEqual(cg.filter((c) => c.startsWith(name)), []);
    });
  });
}
