import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ID_SHIFT } from '../../src/image/ids.js';
import { DockerCli, DockerCommandError } from '../../src/sandbox/docker/cli.js';
import { DockerRuntime, RootWithoutUsernsError } from '../../src/sandbox/docker/docker.js';
import { UnrepresentableEnvError } from '../../src/sandbox/docker/env-file.js';
import { findBinary, makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import type { RuntimeConfig, Sandbox } from '../../src/sandbox/runtime.js';
import { buildTestImages, emptyWorkspace, startRegistry, taggedJobId, TEST_TAG, writeScripts, type TestRegistry } from '@sandfleet/test-helpers';
import { imageOf, startHostileRegistry, startSpy, tar } from '../hostile/image-fixtures.js';
import { startDockerd, type TestDockerd } from './fixtures.js';
import { defineSandboxSuite, LIMITS, type StepOutput } from './suite.js';

/** Names of every container on the daemon at `host`, running or not. */
async function containers(host: string): Promise<string[]> {
  return (await new DockerCli(host).must(['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter(Boolean);
}

/**
 * Mounts of this test process's job disks' `layers/` directories (a step's writable layer bound
 * into dockerd's storage). The mount table is the host's: other test processes' docker steps (other
 * files of the suite, other checkouts on the machine) have binds of their own there at any moment,
 * so only names with this process's tag (`sf-<job key>-…`, the key starting with TEST_TAG) count.
 */
async function layerBinds(): Promise<string[]> {
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').filter((l) => (l.split(' ')[3] ?? '').startsWith(`/layers/sf-${TEST_TAG}-`));
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

    ctx.test('docker: images come through the executor\'s puller; dockerd never talks to a registry, and a known image is not loaded again', async () => {
      const registry = await startHostileRegistry();
      try {
        const image = ctx.images().withUser('1000:1000');
        registry.pushRaw('app/bb', '1', image.manifest, image.blobs);
        const agents: string[] = [];
        registry.override = (req) => {
          agents.push(req.headers['user-agent'] ?? '');
          return false;
        };
        const configDigest = image.blobs.find((b) => b.mediaType.includes('config'))!.digest;
        const cli = new DockerCli(dockerd!.host);
        assert.notEqual((await cli.try(['image', 'inspect', configDigest])).exitCode, 0, 'the daemon does not have the image yet');
        const byTag = `${registry.host}/app/bb:1`;
        const byDigest = `${registry.host}/app/bb@${image.manifest.digest}`;
        const { sandbox } = await ctx.prepare({ 'hi.sh': 'echo hi from $(id -u)' });
        try {
          const r = await ctx.run(sandbox, 'hi.sh', { image: byTag });
          assert.equal(r.stdout, 'hi from 1000\n', r.stderr);
          assert.match(r.command.join(' '), new RegExp(` ${configDigest} /data/`), 'the step ran by the verified image id');
        } finally {
          await sandbox.teardown();
        }
        assert.equal(await cli.must(['image', 'inspect', '--format', '{{.Id}}', configDigest]), configDigest);
        assert.ok(agents.length > 0);
        assert.deepEqual(agents.filter((a) => a !== 'sandfleet-executor'), [], 'only the executor asked the registry');
        // Another job (and a digest reference) asks for the manifest with its own credentials, but
        // the daemon has the image by its config digest: no layer is fetched or loaded again.
        registry.requests.length = 0;
        const again = await ctx.prepare({ 'hi.sh': 'echo again' });
        try {
          const r = await ctx.run(again.sandbox, 'hi.sh', { image: byDigest });
          assert.equal(r.stdout, 'again\n', r.stderr);
        } finally {
          await again.sandbox.teardown();
        }
        const asked = registry.requests.map((q) => q.path);
        assert.ok(asked.some((p) => p.includes('/manifests/')), asked.join(' '));
        assert.deepEqual(asked.filter((p) => p.includes('/blobs/') && !p.endsWith(configDigest)), [], 'no layer was fetched again');
        await cli.must(['image', 'rm', '-f', configDigest]);
      } finally {
        await registry.stop();
      }
    });

    ctx.test('docker: a registry whose token realm is a blocked address is refused by the address policy; nobody contacts the realm', async () => {
      const registry = await startHostileRegistry();
      // 127.0.0.2 is loopback, so even a broken check sends nothing off this machine; only 127.0.0.1 is allowed.
      const realm = await startSpy('127.0.0.2');
      try {
        registry.override = (_req, res) => {
          res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.2:${realm.port}/token",service="x"` }).end();
          return true;
        };
        const { sandbox } = await ctx.prepare({ 'x.sh': 'echo ran' });
        try {
          await assert.rejects(ctx.run(sandbox, 'x.sh', { image: `${registry.host}/app/x:1` }),
            /cannot pull 127\.0\.0\.1:\d+\/app\/x:1 from 127\.0\.0\.1:\d+: token realm refused: 127\.0\.0\.2:\d+ is a private or reserved address/);
        } finally {
          await sandbox.teardown();
        }
        assert.equal(realm.connections(), 0, 'neither the executor nor dockerd followed the realm');
        assert.deepEqual(await containers(dockerd!.host), []);
      } finally {
        await registry.stop();
        await realm.stop();
      }
    });

    ctx.test('docker: an image that unpacks past EXECUTOR_IMAGE_MAX_SIZE is refused before dockerd sees it', async () => {
      const registry = await startHostileRegistry();
      try {
        // 4 MiB of zeros: a few KiB compressed, within the blob budget, past the unpacked one.
        const bomb = imageOf([tar([{ path: 'zeros', data: Buffer.alloc(4 * 2 ** 20) }])]);
        registry.push('app/bomb', '1', bomb);
        const config: RuntimeConfig = {
          runtime: 'docker', stateDir: await fs.mkdtemp(path.join(ctx.stateDir(), 'budget-')), registryMirrorUrls: [],
          imageStore: { allowedPrivateRegistries: ['127.0.0.1'], maxImageBytes: 2 ** 20 }, network: 'none', limits: LIMITS,
        };
        const small = new DockerRuntime(makeRuntimeDeps(config), dockerd!.host);
        const { sandbox } = await ctx.prepare({ 'x.sh': 'echo ran' }, {}, small);
        try {
          await assert.rejects(ctx.run(sandbox, 'x.sh', { image: `${registry.host}/app/bomb:1` }), /the unpacked image is larger than the 1 MiB limit \(EXECUTOR_IMAGE_MAX_SIZE\)/);
        } finally {
          await sandbox.teardown();
        }
        assert.notEqual((await new DockerCli(dockerd!.host).try(['image', 'inspect', bomb.config.digest])).exitCode, 0, 'the daemon never got the image');
      } finally {
        await registry.stop();
      }
    });

    ctx.test('docker: refuses step env an env file cannot carry, before anything is created', async () => {
      const { sandbox } = await ctx.prepare({ 'env.sh': 'echo "[$A]"' });
      try {
        for (const [pair, why] of [['KEY=SECRETVAL\nx', /newline/], ['KEY=SECRETVAL\r', /carriage return/], ['BARE', /no "="/], [' LEAD=x', /whitespace/], ['#C=x', /starts with "#"/]] as const) {
          await assert.rejects(ctx.run(sandbox, 'env.sh', { env: [pair] }), (err: unknown) => {
            assert.ok(err instanceof UnrepresentableEnvError, String(err));
            assert.match(err.message, why);
            assert.doesNotMatch(err.message, /SECRETVAL/, 'the value is not in the message');
            return true;
          });
        }
        assert.deepEqual(await containers(dockerd!.host), [], 'nothing was created');
        // What a file can carry arrives exactly: '=' and spaces in values, '#' inside, an empty value.
        const r = await ctx.run(sandbox, 'env.sh', { env: ['A= x=y #z ', 'B='] });
        assert.equal(r.stdout, '[ x=y #z ]\n', r.stderr);
      } finally {
        await sandbox.teardown();
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
    const sandbox = await runtime.prepare({ jobId: taggedJobId(`docker-plain-${path.basename(workspaceDir)}`), workspaceDir, progress: () => {}, signal: AbortSignal.timeout(120_000) });
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
