import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ID_SHIFT } from '../../src/image/ids.js';
import { DockerCli, DockerCommandError } from '../../src/sandbox/docker/cli.js';
import { DockerRuntime, RootWithoutUsernsError } from '../../src/sandbox/docker/docker.js';
import { findBinary, makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import type { RuntimeConfig, Sandbox } from '../../src/sandbox/runtime.js';
import { buildTestImages, emptyWorkspace, startRegistry, writeScripts, type TestRegistry } from '@sandfleet/test-helpers';
import { startDockerd, type TestDockerd } from './fixtures.js';
import { defineSandboxSuite, LIMITS, type StepOutput } from './suite.js';

/** Names of every container on the daemon at `host`, running or not. */
async function containers(host: string): Promise<string[]> {
  return (await new DockerCli(host).must(['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter(Boolean);
}

/** Mounts of a job disk's `layers/` directory (a step's writable layer bound into dockerd's storage). */
async function layerBinds(): Promise<string[]> {
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').filter((l) => (l.split(' ')[3] ?? '').startsWith('/layers/'));
}

// The suite starts its own dockerd (no bridge, no iptables, userns-remap) and stops it afterwards.
let dockerd: TestDockerd | undefined;
defineSandboxSuite('docker', {
  makeRuntime: (config, overrides) => new DockerRuntime(makeRuntimeDeps(config, overrides), dockerd?.host ?? 'unix:///nonexistent/docker.sock'),
  rootHostUid: () => dockerd?.remap?.uid ?? ID_SHIFT,
  before: async () => {
    if (findBinary('dockerd')) dockerd = await startDockerd();
  },
  after: async () => {
    await dockerd?.stop();
  },
  extraTests: (ctx) => {
    ctx.test('docker: a failing docker command names the command, its exit code and what the daemon said', async () => {
      const cli = new DockerCli(dockerd!.host);
      await assert.rejects(cli.must(['inspect', '--format', '{{.Id}}', 'sf-no-such-container']), (err: unknown) => {
        assert.ok(err instanceof DockerCommandError, String(err));
        assert.equal(err.exitCode, 1);
        assert.match(err.message, /^docker inspect --format \{\{\.Id\}\} sf-no-such-container failed \(exit 1\): .*no such (object|container)/i);
        return true;
      });
    });

    ctx.test('docker: an abort during set-up ends the step as a time limit and leaves no container behind', async () => {
      // Each abort lands in another part of a fresh sandbox's set-up (user lookup, holder container,
      // job network, create, layer bind, start) or in the step itself. Set-up commands used to be
      // killed by the abort, which failed the step with an empty "docker run failed: " and could
      // leave the holder container running.
      for (const ms of [1, 100, 250, 400, 600, 800, 1000, 1300, 1700, 2200]) {
        const { sandbox } = await ctx.prepare({ 'slow.sh': 'echo started; sleep 600; echo finished' });
        let r: StepOutput;
        try {
          r = await ctx.run(sandbox, 'slow.sh', { signal: AbortSignal.timeout(ms) });
        } finally {
          await sandbox.teardown();
        }
        assert.equal(r.failure, 'killed: time limit exceeded', `abort after ${ms} ms: exit ${r.exitCode}, ${r.stderr}`);
        assert.notEqual(r.exitCode, 0);
        assert.doesNotMatch(r.stdout, /finished/);
        assert.deepEqual(await containers(dockerd!.host), [], `containers left after an abort at ${ms} ms`);
        assert.deepEqual(await layerBinds(), [], `layer mounts left after an abort at ${ms} ms`);
      }
    });

    ctx.test('docker: runs a step as the user its image names, looked up in the image\'s own /etc/passwd', async () => {
      await ctx.registry().push('test/busybox-named', '1', ctx.images().withUser('user'));
      await ctx.registry().push('test/busybox-nosuch', '1', ctx.images().withUser('nosuch'));
      const { sandbox, workspaceDir } = await ctx.prepare({ 'who.sh': 'id -u; id -g; touch /data/mine' });
      try {
        const r = await ctx.run(sandbox, 'who.sh', { image: `${ctx.registry().host}/test/busybox-named:1` });
        assert.equal(r.stdout, '1000\n1000\n', r.stderr);
        assert.equal((await fs.stat(path.join(workspaceDir, 'mine'))).uid, dockerd!.remap!.uid + 1000);
        await assert.rejects(ctx.run(sandbox, 'who.sh', { image: `${ctx.registry().host}/test/busybox-nosuch:1` }), /image user "nosuch" is not in the image's \/etc\/passwd/);
      } finally {
        await sandbox.teardown();
      }
      assert.deepEqual(await containers(dockerd!.host), []);
    });
  },
});

describe('docker sandbox on a daemon without userns-remap', { concurrency: false }, () => {
  let plain: TestDockerd | undefined;
  let registry: TestRegistry | undefined;
  let runtime: DockerRuntime;
  let stateDir: string;
  let skip: string | undefined;
  const workspaces: string[] = [];

  before(async () => {
    if (!findBinary('dockerd')) {
      skip = 'dockerd is not installed';
      return;
    }
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-docker-plain-'));
    plain = await startDockerd({ usernsRemap: false });
    // `none`: no job network, so no uplink is needed (and the host's default route is never used).
    const config: RuntimeConfig = { runtime: 'docker', stateDir, registryMirrorUrls: [], imageStore: { allowedPrivateRegistries: ['127.0.0.1'] }, network: 'none', limits: LIMITS };
    runtime = new DockerRuntime(makeRuntimeDeps(config), plain.host);
    const images = await buildTestImages();
    registry = await startRegistry();
    await registry.push('test/busybox', '1', images.busybox);
    await registry.push('test/busybox-root', '1', images.busyboxRoot);
    await registry.push('test/busybox-named-root', '1', images.withUser('root'));
    await registry.push('test/busybox-group-root', '1', images.withUser('1000:0'));
  });

  after(async () => {
    await registry?.stop();
    await plain?.stop();
    for (const ws of workspaces) await fs.rm(ws, { recursive: true, force: true });
    if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
  });

  async function prepare(scripts: Record<string, string>): Promise<{ sandbox: Sandbox; workspaceDir: string }> {
    const workspaceDir = await emptyWorkspace();
    workspaces.push(workspaceDir);
    const sandbox = await runtime.prepare({ jobId: `docker-plain-${path.basename(workspaceDir)}`, workspaceDir, progress: () => {}, signal: AbortSignal.timeout(120_000) });
    await writeScripts(sandbox.workspaceDir, scripts);
    return { sandbox, workspaceDir };
  }

  async function run(sandbox: Sandbox, script: string, image: string): Promise<StepOutput> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const result = await sandbox.run(
      { key: `step.${script}`, image, scriptPath: `.sourcegraph-executor/${script}`, dir: '', env: [] },
      { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c), signal: AbortSignal.timeout(60_000) },
    );
    return { ...result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  }

  const test = (title: string, fn: () => Promise<void>) => it(title, async (t) => {
    if (skip) return t.skip(skip);
    await fn();
  });

  test('the probe says the daemon does not remap users', async () => {
    const availability = await runtime.probe();
    assert.equal(availability.available, true, availability.reason);
    assert.match(availability.reason, /no userns-remap: container root would be host root, so steps that would run as root are refused/);
  });

  test('refuses a step that would run as root or in group 0, before anything of it runs', async () => {
    const { sandbox, workspaceDir } = await prepare({ 'root.sh': 'touch /data/ran' });
    try {
      for (const [repo, ids] of [['busybox-root', 'uid 0, gid 0'], ['busybox-named-root', 'uid 0, gid 0'], ['busybox-group-root', 'uid 1000, gid 0']] as const) {
        const image = `${registry!.host}/test/${repo}:1`;
        await assert.rejects(run(sandbox, 'root.sh', image), (err: unknown) => {
          assert.ok(err instanceof RootWithoutUsernsError, String(err));
          const expected = `refusing to run ${image} as ${ids}: the Docker daemon does not remap users (no userns-remap), so root in the container would be root on the host. Set up userns-remap (\`executor install docker\``;
          assert.ok(err.message.startsWith(expected), err.message);
          return true;
        });
        assert.deepEqual(await containers(plain!.host), [], `nothing was created for ${repo}`);
      }
      await assert.rejects(fs.stat(path.join(workspaceDir, 'ran')));
    } finally {
      await sandbox.teardown();
    }
  });

  test('runs a non-root step as its own host uid without capabilities, its root limited by the job disk', async () => {
    const { sandbox, workspaceDir } = await prepare({
      'user.sh': 'set +e; id -u; grep -E "^Cap(Eff|Bnd)" /proc/self/status; touch /data/mine; dd if=/dev/zero of=/var/tmp/fill bs=1M count=200 2>&1; echo "root=$?"',
    });
    try {
      const r = await run(sandbox, 'user.sh', `${registry!.host}/test/busybox:1`);
      assert.match(r.stdout, /^1000\nCapEff:\s+0000000000000000\nCapBnd:\s+0000000000000000\n/, r.stderr);
      assert.match(r.stdout, /No space left on device[\s\S]*root=1/);
      assert.equal((await fs.stat(path.join(workspaceDir, 'mine'))).uid, 1000);
    } finally {
      await sandbox.teardown();
    }
    assert.deepEqual(await containers(plain!.host), []);
    assert.deepEqual(await layerBinds(), []);
  });
});
