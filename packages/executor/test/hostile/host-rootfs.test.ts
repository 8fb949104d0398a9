/**
 * What the image runtimes (bwrap, runc/crun, gVisor, docker) do on the host for a step must stay inside
 * the step's root and the job's directories: an image's symlinks are never followed by the
 * executor, the workspace is never a place for setuid or device files, and a step's env (its
 * secrets) is never in a world-readable place — argv, config files or state directories.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { capture } from '../../src/process/run.js';
import { BwrapRuntime } from '../../src/sandbox/oci/bwrap.js';
import { GvisorRuntime } from '../../src/sandbox/oci/gvisor.js';
import { OciRuntime } from '../../src/sandbox/oci/oci.js';
import { DockerRuntime } from '../../src/sandbox/docker/docker.js';
import type { Runtime, RuntimeConfig, Sandbox, StepResult } from '../../src/sandbox/runtime.js';
import { findBinary, makeRuntimeDeps, SYSTEM_PATH } from '../../src/sandbox/shared/host.js';
import { startDockerd, type TestDockerd } from '../sandbox/fixtures.js';
import { LIMITS } from '../sandbox/suite.js';
import { buildTestImages, emptyWorkspace, makeTempDir, removeTempDir, startRegistry, taggedJobId, waitFor, writeScripts, type Blob, type TestImage, type TestRegistry } from '@sandfleet/test-helpers';

const ENV = { PATH: SYSTEM_PATH };
const SECRET = 'sup3r-secret-env-value-7f3a';

function blobOf(data: Buffer, mediaType: string): Blob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, mediaType, data };
}

/** A one-layer image of busybox whose /etc is built by `makeEtc(rootDir)`; runs as `user` (root). */
async function hostileImage(work: string, name: string, makeEtc: (root: string) => Promise<void>, user = '0:0'): Promise<TestImage> {
  const root = path.join(work, name);
  await fs.mkdir(path.join(root, 'bin'), { recursive: true });
  await fs.copyFile('/usr/bin/busybox', path.join(root, 'bin/busybox'));
  await fs.chmod(path.join(root, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'cp', 'chmod', 'sleep', 'id', 'ls', 'touch']) await fs.symlink('busybox', path.join(root, 'bin', applet));
  await fs.mkdir(path.join(root, 'tmp'), { mode: 0o1777 });
  await makeEtc(root);
  const tarFile = `${root}.tar`;
  const tar = await capture(['tar', '--sort=name', '--mtime=@0', '--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tarFile, '.'], { env: ENV });
  if (tar.exitCode !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  const raw = await fs.readFile(tarFile);
  const layer = blobOf(gzipSync(raw), 'application/vnd.oci.image.layer.v1.tar+gzip');
  const diffId = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
  const config = blobOf(Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { User: user, Env: ['PATH=/bin'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [diffId] },
  })), 'application/vnd.oci.image.config.v1+json');
  const manifest = blobOf(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
  })), 'application/vnd.oci.image.manifest.v1+json');
  return { manifest, blobs: [layer, config], childManifests: [] };
}

/** Every file under `dir` with its content, mode and owner. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await fs.readdir(dir)).sort()) {
    const p = path.join(dir, name);
    const st = await fs.lstat(p);
    out.push(`${name} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? await fs.readFile(p, 'utf8') : ''}`);
  }
  return out;
}

/** Options of the mount that holds `p` (findmnt -T). */
async function mountOptions(p: string): Promise<string[]> {
  const r = await capture(['findmnt', '-n', '-o', 'OPTIONS', '-T', p], { env: ENV });
  return r.stdout.trim().split(',');
}

async function cmdlinesContaining(text: string): Promise<string[]> {
  const hits: string[] = [];
  for (const pid of (await fs.readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) hits.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return hits;
}

/**
 * Polls every process's argv for `text` until stopped; returns what it saw. Each scan is
 * synchronous (a few milliseconds), fast enough to catch a CLI that lives for a fraction of a second.
 */
function watchCmdlines(text: string): { stop: () => Promise<string[]> } {
  const seen = new Set<string>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        let cmdline = '';
        try {
          cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          continue; // gone meanwhile
        }
        if (cmdline.includes(text)) seen.add(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return [...seen];
    },
  };
}

/** Files below `dir` (recursively, not crossing into step roots) whose name is in `names`. */
async function findFiles(dir: string, names: string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 6) return;
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && e.name !== 'root' && e.name !== 'disk' && e.name !== 'images') await walk(p, depth + 1);
      else if (e.isFile() && names.includes(e.name)) found.push(p);
    }
  };
  await walk(dir, 0);
  return found;
}

/** The docker runtime's private daemon, started by its describe block. */
let dockerd: TestDockerd | undefined;

const RUNTIMES: [string, (config: RuntimeConfig) => Runtime][] = [
  ['bwrap', (config) => new BwrapRuntime(makeRuntimeDeps(config))],
  ['runc', (config) => new OciRuntime(makeRuntimeDeps(config), 'runc')],
  ['crun', (config) => new OciRuntime(makeRuntimeDeps(config), 'crun')],
  ['gvisor', (config) => new GvisorRuntime(makeRuntimeDeps(config))],
  ['docker', (config) => new DockerRuntime(makeRuntimeDeps(config), dockerd?.host ?? 'unix:///nonexistent/docker.sock')],
];

describe('image runtimes on the host', { concurrency: false }, () => {
  let registry: TestRegistry;
  let work: string;
  /** Host directory a hostile image's /etc points at. */
  let watched: string;
  let watchedBefore: string[];

  before(async () => {
    work = makeTempDir('sandfleet-hostile-rootfs-');
    watched = path.join(work, 'watched-etc');
    await fs.mkdir(watched);
    await fs.writeFile(path.join(watched, 'hosts'), 'original hosts\n');
    await fs.writeFile(path.join(watched, 'resolv.conf'), 'original resolv.conf\n');
    await fs.writeFile(path.join(watched, 'passwd'), 'app:x:4242:4242:host user:/:/bin/sh\n');
    watchedBefore = await snapshot(watched);
    registry = await startRegistry();
    const images = await buildTestImages();
    await registry.push('test/busybox-root', '1', images.busyboxRoot);
    await registry.push('hostile/etc-absolute', '1', await hostileImage(work, 'abs', (root) => fs.symlink(watched, path.join(root, 'etc'))));
    await registry.push('hostile/etc-relative', '1', await hostileImage(work, 'rel', (root) => fs.symlink(`../../../../../../../../../../../..${watched}`, path.join(root, 'etc'))));
    await registry.push('hostile/etc-files', '1', await hostileImage(work, 'files', async (root) => {
      await fs.mkdir(path.join(root, 'etc'));
      await fs.symlink(path.join(watched, 'hosts'), path.join(root, 'etc/hosts'));
      await fs.symlink(`../../../../../../../../../../../..${watched}/resolv.conf`, path.join(root, 'etc/resolv.conf'));
    }));
    // /etc/passwd is a link to a host file naming the image's user; the image has no such user itself.
    await registry.push('hostile/passwd-host', '1', await hostileImage(work, 'passwd-host', async (root) => {
      await fs.mkdir(path.join(root, 'etc'));
      await fs.symlink(path.join(watched, 'passwd'), path.join(root, 'etc/passwd'));
    }, 'app'));
    // An absolute link inside the image (as Docker resolves it, within the image).
    await registry.push('hostile/passwd-in-image', '1', await hostileImage(work, 'passwd-in-image', async (root) => {
      await fs.mkdir(path.join(root, 'etc'));
      await fs.writeFile(path.join(root, 'etc/passwd.real'), 'app:x:4243:4244::/:/bin/sh\n');
      await fs.symlink('/etc/passwd.real', path.join(root, 'etc/passwd'));
    }, 'app'));
  });
  after(async () => {
    await registry?.stop();
    removeTempDir(work);
  });

  for (const [name, makeRuntime] of RUNTIMES) {
    describe(name, { concurrency: false }, () => {
      let stateDir: string;
      let skip: string | undefined;
      const workspaces: string[] = [];
      const config = (diskBytes = LIMITS.diskBytes): RuntimeConfig => ({ runtime: name === 'runc' || name === 'crun' ? 'oci' : (name as 'bwrap' | 'gvisor' | 'docker'), stateDir, registryMirrorUrls: [], imageStore: { allowedPrivateRegistries: ['127.0.0.1'] }, network: 'none', limits: { ...LIMITS, diskBytes } });

      before(async () => {
        stateDir = makeTempDir(`sandfleet-hostile-${name}-`);
        if (name === 'docker' && findBinary('dockerd')) dockerd = await startDockerd();
        const availability = await makeRuntime(config()).probe();
        if (!availability.available) skip = availability.reason;
      });
      after(async () => {
        for (const ws of workspaces) await fs.rm(ws, { recursive: true, force: true });
        removeTempDir(stateDir);
        if (name === 'docker') await dockerd?.stop();
      });

      async function withSandbox(scripts: Record<string, string>, diskBytes: number | undefined, fn: (sandbox: Sandbox, workspaceDir: string) => Promise<void>): Promise<void> {
        const workspaceDir = await emptyWorkspace();
        workspaces.push(workspaceDir);
        const sandbox = await makeRuntime(config(diskBytes)).prepare({
          jobId: taggedJobId(`${name}-${path.basename(workspaceDir)}`),
          workspaceDir,
          progress: () => {},
          signal: AbortSignal.timeout(120_000),
        });
        try {
          await writeScripts(sandbox.workspaceDir, scripts);
          await fn(sandbox, workspaceDir);
        } finally {
          await sandbox.teardown();
        }
      }

      async function run(sandbox: Sandbox, script: string, image: string, env: string[] = []): Promise<StepResult & { stdout: string; stderr: string }> {
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        const result = await sandbox.run(
          { key: `step.${script}`, image: `${registry.host}/${image}`, scriptPath: `.sourcegraph-executor/${script}`, dir: '', env },
          { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c), signal: AbortSignal.timeout(60_000) },
        );
        return { ...result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      }

      const test = (title: string, fn: () => Promise<void>) =>
        it(title, async (t) => {
          if (skip) return t.skip(skip);
          await fn();
        });

      for (const image of ['hostile/etc-absolute:1', 'hostile/etc-relative:1']) {
        // Docker: the executor never writes into the image's root (dockerd and runc set up /etc,
        // resolving the image's symlinks inside the container's root), so there is nothing to
        // refuse; what must hold is that the host directory stays untouched and unseen.
        if (name === 'docker') {
          test(`runs an image whose /etc is a symlink to the host (${image}) inside its own root; the host directory is unchanged and unseen`, async () => {
            await withSandbox({ 'x.sh': 'cat /etc/hosts /etc/resolv.conf; echo ran' }, undefined, async (sandbox) => {
              const r = await run(sandbox, 'x.sh', image);
              assert.match(r.stdout, /ran\n$/, r.stderr);
              assert.doesNotMatch(r.stdout, /original/);
            });
            assert.deepEqual(await snapshot(watched), watchedBefore);
          });
          continue;
        }
        test(`refuses an image whose /etc is a symlink to the host (${image}); the host directory is unchanged`, async () => {
          await withSandbox({ 'x.sh': 'echo ran' }, undefined, async (sandbox) => {
            await assert.rejects(run(sandbox, 'x.sh', image), /the image's \/etc is a symbolic link/);
          });
          assert.deepEqual(await snapshot(watched), watchedBefore);
        });
      }

      test('replaces an image\'s /etc/hosts and /etc/resolv.conf symlinks without following them', async () => {
        await withSandbox({ 'x.sh': 'cat /etc/hosts' }, undefined, async (sandbox) => {
          const r = await run(sandbox, 'x.sh', 'hostile/etc-files:1');
          assert.equal(r.exitCode, 0, r.stderr);
          assert.match(r.stdout, /127\.0\.0\.1\s+localhost/);
        });
        assert.deepEqual(await snapshot(watched), watchedBefore);
      });

      test('looks the image user up in the image even when /etc/passwd links to a host file', async () => {
        await withSandbox({ 'id.sh': 'id -u; id -g' }, undefined, async (sandbox) => {
          await assert.rejects(run(sandbox, 'id.sh', 'hostile/passwd-host:1'), /image user "app" is not in the image's \/etc\/passwd/);
          const r = await run(sandbox, 'id.sh', 'hostile/passwd-in-image:1');
          assert.equal(r.exitCode, 0, r.stderr);
          assert.equal(r.stdout, '4243\n4244\n', 'an absolute link resolves inside the image');
        });
        assert.deepEqual(await snapshot(watched), watchedBefore);
      });

      test('mounts the workspace nosuid,nodev without a disk limit, so a planted setuid binary is inert', async () => {
        await withSandbox({ 'plant.sh': 'cp /bin/busybox /data/suid-sh && chmod 4755 /data/suid-sh && ls -l /data/suid-sh' }, 0, async (sandbox, workspaceDir) => {
          const r = await run(sandbox, 'plant.sh', 'test/busybox-root:1');
          assert.equal(r.exitCode, 0, r.stderr);
          const planted = path.join(workspaceDir, 'suid-sh');
          const st = await fs.stat(planted);
          assert.equal(st.mode & 0o4000, 0o4000, 'the step could set the bit');
          for (const p of [planted, ...(await findDataDirs(stateDir))]) {
            const options = await mountOptions(p);
            assert.ok(options.includes('nosuid') && options.includes('nodev'), `${p}: ${options.join(',')}`);
          }
        });
      });

      test('keeps a step\'s env out of argv and its files root-only', async () => {
        await withSandbox({ 'wait.sh': 'echo "len=${#SECRET_VAR}"; touch /data/started; sleep 4' }, undefined, async (sandbox, workspaceDir) => {
          // Watched from before the step is set up: commands that create it (docker create) are short-lived.
          const watch = watchCmdlines(SECRET);
          const running = run(sandbox, 'wait.sh', 'test/busybox-root:1', [`SECRET_VAR=${SECRET}`]);
          try {
            await waitFor('the step to start', () => fs.access(path.join(workspaceDir, 'started')).then(() => true, () => false), 60_000);
            assert.deepEqual(await cmdlinesContaining(SECRET), [], 'no process has the secret in its argv');
            assert.deepEqual(await watch.stop(), [], 'no process had the secret in its argv while the step was set up');
            if (name === 'docker') {
              // The env file exists only while `docker create` runs, in a 0700 directory.
              const envDir = path.join(stateDir, 'jobs', (await fs.readdir(path.join(stateDir, 'jobs')))[0]!, 'docker-env');
              assert.equal((await fs.stat(envDir)).mode & 0o777, 0o700, envDir);
              assert.deepEqual(await fs.readdir(envDir), [], 'the env file is removed once the container is created');
              return;
            }
            const files = await findFiles(path.join(stateDir, 'jobs'), ['config.json', 'env.args']);
            assert.ok(files.length > 0, 'found the step\'s config or env file');
            for (const f of files) assert.equal((await fs.stat(f)).mode & 0o777, 0o600, f);
            const oci = path.join(stateDir, 'oci');
            const stateDirs = name === 'bwrap' ? [] : [oci, ...(await fs.readdir(oci)).map((d) => path.join(oci, d))];
            for (const dir of stateDirs) {
              assert.equal((await fs.stat(dir)).mode & 0o777, 0o700, dir);
            }
          } finally {
            await watch.stop();
            const r = await running;
            assert.equal(r.exitCode, 0, r.stderr);
            assert.equal(r.stdout, `len=${SECRET.length}\n`, 'the env still reaches the step');
          }
        });
      });
    });
  }
});

/** The job directories' data mounts under `stateDir` (disk/data). */
async function findDataDirs(stateDir: string): Promise<string[]> {
  const jobs = path.join(stateDir, 'jobs');
  return (await fs.readdir(jobs).catch(() => [])).map((j) => path.join(jobs, j, 'disk', 'data'));
}
