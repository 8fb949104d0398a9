/**
 * Small OCI images for real sandboxes, built from this machine's busybox-static. Cached under
 * os.tmpdir() keyed by a hash of their inputs:
 * - `busybox`: user 1000:1000, two layers; the second whites out /etc/removed and makes /opt/stuff
 *   opaque, so a correct unpacker shows only /opt/stuff/new. Pushed as an OCI index with a linux/amd64
 *   and a linux/arm64 entry.
 * - `busybox-root`: the first layer alone, run as root (`withUser(u)`: the same with `User` u).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { capture, SYSTEM_PATH_ENV } from './capture.js';

const FIXTURE_VERSION = '3';

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
  const r = await capture(['/bin/sh', '-ec', script], { cwd, env: SYSTEM_PATH_ENV });
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
