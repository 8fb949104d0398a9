/**
 * Test fixtures for real sandboxes: small OCI images built from this machine's busybox-static,
 * pushed to a local `docker-registry` on 127.0.0.1, plus workspaces and ports. Reusable by any test
 * that needs an image to run.
 *
 * Images (cached under os.tmpdir() keyed by a hash of their inputs):
 * - `busybox`: user 1000:1000, two layers; the second whites out /etc/removed and makes /opt/stuff
 *   opaque, so a correct unpacker shows only /opt/stuff/new. Pushed as an OCI index with a linux/amd64
 *   and a linux/arm64 entry.
 * - `busybox-root`: the first layer alone, run as root (`withUser(u)`: the same with `User` u).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { capture, runProcess } from '../../src/process/run.js';
import { DockerCli } from '../../src/sandbox/docker/cli.js';
import { inspectDaemon } from '../../src/sandbox/docker/daemon.js';
import { ensureRemapUser, REMAP_USER } from '../../src/sandbox/docker/userns.js';

const FIXTURE_VERSION = '3';
const PATH_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

export interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  data: Buffer;
}

export interface TestImage {
  /** Manifest or index to PUT, with its media type. */
  manifest: Blob;
  /** Every blob and child manifest the registry needs first. */
  blobs: Blob[];
  childManifests: Blob[];
}

export interface TestImages {
  busybox: TestImage;
  busyboxRoot: TestImage;
  /** The first layer alone with the given `User` (`user`, `root`, `nosuch:x`, …). */
  withUser(user: string): TestImage;
}

function blobOf(data: Buffer, mediaType: string): Blob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, mediaType, data };
}

async function sh(script: string, cwd?: string): Promise<string> {
  const r = await capture(['/bin/sh', '-ec', script], { cwd, env: PATH_ENV });
  if (r.exitCode !== 0) throw new Error(`fixture command failed (${r.exitCode}): ${script}\n${r.stderr}`);
  return r.stdout;
}

async function tarGz(dir: string, out: string): Promise<void> {
  await sh(`tar --sort=name --mtime=@0 --numeric-owner -C '${dir}' -cf - . | gzip -n > '${out}'`);
}

async function makeBaseRootfs(dir: string): Promise<void> {
  const applets = (await sh('busybox --list')).split('\n').filter((a) => a && a !== 'busybox');
  await fs.mkdir(path.join(dir, 'bin'), { recursive: true });
  await fs.copyFile('/usr/bin/busybox', path.join(dir, 'bin/busybox'));
  await fs.chmod(path.join(dir, 'bin/busybox'), 0o755);
  for (const applet of applets) await fs.symlink('busybox', path.join(dir, 'bin', applet)).catch(() => {});
  for (const d of ['etc', 'root', 'home/user', 'tmp', 'opt/stuff', 'usr/bin', 'var/tmp']) await fs.mkdir(path.join(dir, d), { recursive: true });
  await fs.writeFile(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await fs.writeFile(path.join(dir, 'etc/group'), 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n');
  await fs.writeFile(path.join(dir, 'etc/removed'), 'this file is whited out by layer 2\n');
  await fs.writeFile(path.join(dir, 'opt/stuff/old'), 'hidden by the opaque whiteout\n');
  await fs.writeFile(path.join(dir, 'etc/hostname'), 'image\n');
  await fs.chmod(path.join(dir, 'tmp'), 0o1777);
  await fs.chmod(path.join(dir, 'var/tmp'), 0o1777);
  await fs.chmod(path.join(dir, 'root'), 0o700);
  await fs.chown(path.join(dir, 'home/user'), 1000, 1000);
}

async function makeOverlayLayer(dir: string): Promise<void> {
  await fs.mkdir(path.join(dir, 'etc'), { recursive: true });
  await fs.mkdir(path.join(dir, 'opt/stuff'), { recursive: true });
  await fs.writeFile(path.join(dir, 'etc/.wh.removed'), '');
  await fs.writeFile(path.join(dir, 'opt/stuff/.wh..wh..opq'), '');
  await fs.writeFile(path.join(dir, 'opt/stuff/new'), 'from layer 2\n');
}

function imageConfig(arch: string, user: string, layers: Blob[]): Blob {
  const diffIds = layers.map((l) => `sha256:${createHash('sha256').update(gunzipSync(l.data)).digest('hex')}`);
  const config = {
    architecture: arch,
    os: 'linux',
    config: { User: user, Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'IMAGE_VAR=from-image'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  return blobOf(Buffer.from(JSON.stringify(config)), 'application/vnd.oci.image.config.v1+json');
}

function manifestOf(config: Blob, layers: Blob[]): Blob {
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  return blobOf(Buffer.from(JSON.stringify(manifest)), 'application/vnd.oci.image.manifest.v1+json');
}

/** Builds (or loads from the cache) the test images. */
export async function buildTestImages(): Promise<TestImages> {
  const key = createHash('sha256').update(FIXTURE_VERSION).update(readFileSync('/usr/bin/busybox')).digest('hex').slice(0, 16);
  const cacheDir = path.join(os.tmpdir(), 'sandfleet-test-images', key);
  if (!existsSync(path.join(cacheDir, 'done'))) {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-image-build-'));
    try {
      await makeBaseRootfs(path.join(work, 'l1'));
      await makeOverlayLayer(path.join(work, 'l2'));
      await tarGz(path.join(work, 'l1'), path.join(work, 'layer1.tar.gz'));
      await tarGz(path.join(work, 'l2'), path.join(work, 'layer2.tar.gz'));
      const staging = `${cacheDir}.${randomBytes(4).toString('hex')}`;
      await fs.mkdir(staging, { recursive: true });
      await fs.copyFile(path.join(work, 'layer1.tar.gz'), path.join(staging, 'layer1.tar.gz'));
      await fs.copyFile(path.join(work, 'layer2.tar.gz'), path.join(staging, 'layer2.tar.gz'));
      await fs.writeFile(path.join(staging, 'done'), '');
      await fs.rename(staging, cacheDir).catch(async () => fs.rm(staging, { recursive: true, force: true }));
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  }
  const layerType = 'application/vnd.oci.image.layer.v1.tar+gzip';
  const l1 = blobOf(await fs.readFile(path.join(cacheDir, 'layer1.tar.gz')), layerType);
  const l2 = blobOf(await fs.readFile(path.join(cacheDir, 'layer2.tar.gz')), layerType);

  const amdConfig = imageConfig('amd64', '1000:1000', [l1, l2]);
  const armConfig = imageConfig('arm64', '1000:1000', [l1, l2]);
  const amd = manifestOf(amdConfig, [l1, l2]);
  const arm = manifestOf(armConfig, [l1, l2]);
  const index = blobOf(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: arm.mediaType, digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: amd.mediaType, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  })), 'application/vnd.oci.image.index.v1+json');

  const withUser = (user: string): TestImage => {
    const config = imageConfig('amd64', user, [l1]);
    return { manifest: manifestOf(config, [l1]), blobs: [l1, config], childManifests: [] };
  };
  return {
    busybox: { manifest: index, blobs: [l1, l2, amdConfig, armConfig], childManifests: [amd, arm] },
    busyboxRoot: withUser(''),
    withUser,
  };
}

/** A port that nothing listens on (bound, then closed): "an unreachable registry". */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface TestRegistry {
  /** `127.0.0.1:<port>`, as used in image references. */
  host: string;
  url: string;
  credentials?: { username: string; password: string };
  push(repository: string, tag: string, image: TestImage): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `docker-registry serve` on a free loopback port, optionally with htpasswd auth. */
export async function startRegistry(options: { auth?: { username: string; password: string } } = {}): Promise<TestRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-registry-'));
  const port = await freePort();
  let authYaml = '';
  if (options.auth) {
    const hash = (await capture(['/usr/bin/python3', '-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', options.auth.password], { env: PATH_ENV })).stdout.trim();
    if (!hash.startsWith('$2')) throw new Error('could not make a bcrypt hash for htpasswd (python3 crypt)');
    await fs.writeFile(path.join(dir, 'htpasswd'), `${options.auth.username}:${hash}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: sandfleet-test\n    path: ${dir}/htpasswd\n`;
  }
  await fs.writeFile(path.join(dir, 'config.yml'), [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog: {disabled: true}',
    'storage:',
    `  filesystem: {rootdirectory: ${dir}/data}`,
    '  delete: {enabled: true}',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    authYaml,
  ].join('\n'));
  const controller = new AbortController();
  const stderr: Buffer[] = [];
  const exited = runProcess({ argv: ['docker-registry', 'serve', path.join(dir, 'config.yml')], env: PATH_ENV, signal: controller.signal, killGraceMs: 2000, onStderr: (c) => stderr.push(c) });
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true), () => (exitedEarly = true));
  const url = `http://127.0.0.1:${port}`;
  const authHeader = options.auth ? { authorization: `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}` } : undefined;
  // Wait for the listener: bounded, and it fails loudly if the registry died.
  for (let i = 0; ; i++) {
    if (exitedEarly) throw new Error(`docker-registry exited: ${Buffer.concat(stderr).toString()}`);
    const ok = await fetch(`${url}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
    if (ok) break;
    if (i > 200) throw new Error('docker-registry did not start in 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  const put = async (method: string, target: string, body: Buffer | undefined, headers: Record<string, string> = {}) => {
    const r = await fetch(target.startsWith('http') ? target : `${url}${target}`, { method, body, headers: { ...authHeader, ...headers } });
    if (r.status >= 300) throw new Error(`registry ${method} ${target}: HTTP ${r.status} ${await r.text()}`);
    return r;
  };
  return {
    host: `127.0.0.1:${port}`,
    url,
    credentials: options.auth,
    async push(repository, tag, image) {
      for (const blob of image.blobs) {
        const start = await put('POST', `/v2/${repository}/blobs/uploads/`, undefined);
        const location = new URL(start.headers.get('location')!, url);
        location.searchParams.set('digest', blob.digest);
        await put('PUT', location.toString(), blob.data, { 'content-type': 'application/octet-stream' });
      }
      for (const child of image.childManifests) {
        await put('PUT', `/v2/${repository}/manifests/${child.digest}`, child.data, { 'content-type': child.mediaType });
      }
      await put('PUT', `/v2/${repository}/manifests/${tag}`, image.manifest.data, { 'content-type': image.manifest.mediaType });
    },
    async stop() {
      controller.abort();
      await exited.catch(() => {});
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh workspace directory with step scripts under `.sourcegraph-executor/`. */
export async function makeWorkspace(scripts: Record<string, string>): Promise<string> {
  const dir = await emptyWorkspace();
  await writeScripts(dir, scripts);
  return dir;
}

/** A fresh, empty workspace directory, as a sandbox is prepared with. */
export function emptyWorkspace(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-ws-'));
}

/** Writes step scripts under `<dir>/.sourcegraph-executor/` (a prepared sandbox's workspace). */
export async function writeScripts(dir: string, scripts: Record<string, string>): Promise<void> {
  await fs.mkdir(path.join(dir, '.sourcegraph-executor'), { recursive: true });
  for (const [name, body] of Object.entries(scripts)) {
    await fs.writeFile(path.join(dir, '.sourcegraph-executor', name), `set -e\n${body}\n`);
  }
}

export interface TestDockerd {
  /** `unix:///…/docker.sock`, for DOCKER_HOST. */
  host: string;
  /** Host uid/gid of container root (userns-remap), or undefined when container root is host root. */
  remap: { uid: number; gid: number } | undefined;
  stop(): Promise<void>;
}

/**
 * Starts a private dockerd (temporary data-root, exec-root and socket) that touches no host
 * networking: no bridge, no iptables, no forwarding, no masquerade. With `usernsRemap` (the
 * default) it maps container ids onto the `dockremap` user's sub-id ranges, which are created
 * first if missing, exactly as `executor install docker` does. Fails if dockerd is missing.
 */
export async function startDockerd(options: { usernsRemap?: boolean } = {}): Promise<TestDockerd> {
  const usernsRemap = options.usernsRemap ?? true;
  if (usernsRemap) await ensureRemapUser({ dryRun: false });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-dockerd-'));
  // The remapped root must be able to traverse to its own <data-root>/<uid>.<gid>.
  await fs.chmod(dir, 0o711);
  const host = `unix://${dir}/docker.sock`;
  await fs.writeFile(`${dir}/daemon.json`, '{}\n');
  const controller = new AbortController();
  const log: Buffer[] = [];
  const exited = runProcess({
    argv: ['dockerd', '--data-root', `${dir}/data`, '--exec-root', `${dir}/exec`, '--pidfile', `${dir}/dockerd.pid`, '-H', host,
      '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--userland-proxy=false',
      // An empty config file: the host's /etc/docker/daemon.json (which may set userns-remap too) is not ours to read.
      '--config-file', `${dir}/daemon.json`,
      ...(usernsRemap ? [`--userns-remap=${REMAP_USER}`] : [])],
    env: PATH_ENV,
    signal: controller.signal,
    killGraceMs: 15_000,
    onStdout: (c) => log.push(c),
    onStderr: (c) => log.push(c),
  });
  let done = false;
  void exited.then(() => (done = true), () => (done = true));
  const stop = async () => {
    controller.abort();
    await exited.catch(() => {});
    await capture(['umount', '-R', `${dir}/data`], { env: PATH_ENV });
    await fs.rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (done) {
      await stop();
      throw new Error(`dockerd exited: ${Buffer.concat(log).toString().slice(-2000)}`);
    }
    const r = await capture(['docker', 'version', '--format', '{{.Server.Version}}'], { env: { ...PATH_ENV, DOCKER_HOST: host } });
    if (r.exitCode === 0) break;
    if (i > 300) {
      await stop();
      throw new Error('dockerd did not answer within 30 s');
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
  const { remap } = await inspectDaemon(new DockerCli(host));
  if (usernsRemap && !remap) {
    await stop();
    throw new Error('dockerd was started with --userns-remap but does not report it');
  }
  return { host, remap, stop };
}
