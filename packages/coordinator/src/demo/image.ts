import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Hono } from 'hono';
import { SandfleetError } from '@sandfleet/protocol';

/**
 * The demo image `sandfleet/demo:latest`: busybox (from Debian's busybox-static) as an unprivileged
 * user, built on this machine into an OCI layout and served read-only by the coordinator under
 * `/v2/`, so `sandfleet up` shows a job in a real sandbox without any outside registry. Executors
 * reach it by naming the coordinator as their registry mirror.
 */
export const DEMO_IMAGE = 'sandfleet/demo';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export class DemoImageError extends SandfleetError {
  constructor(message: string) {
    super(message);
  }
}

interface Layout {
  manifestDigest: string;
  manifest: Buffer;
  blobsDir: string;
}

/** Builds the image into `dir` once (kept across restarts); returns what the registry serves. */
export function ensureDemoImage(dir: string, busybox = '/bin/busybox'): Layout {
  const indexFile = path.join(dir, 'manifest.json');
  const blobsDir = path.join(dir, 'blobs');
  if (!fs.existsSync(indexFile)) {
    if (!fs.existsSync(busybox)) throw new DemoImageError(`${busybox} not found: install Debian's busybox-static to build the demo image`);
    fs.mkdirSync(blobsDir, { recursive: true });
    const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-demo-rootfs-'));
    try {
      populateRootfs(rootfs, busybox);
      const tar = execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', rootfs, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
      const layer = zlib.gzipSync(tar);
      const config = Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { User: '1000:1000', Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/tmp'], WorkingDir: '/' },
          rootfs: { type: 'layers', diff_ids: [digestOf(tar)] },
          history: [{ created_by: 'sandfleet up: busybox-static' }],
        }),
      );
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MANIFEST_TYPE,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length }],
        }),
      );
      for (const blob of [config, layer, manifest]) fs.writeFileSync(path.join(blobsDir, digestOf(blob).replace(':', '-')), blob);
      fs.writeFileSync(indexFile, JSON.stringify({ latest: digestOf(manifest) }));
    } finally {
      fs.rmSync(rootfs, { recursive: true, force: true });
    }
  }
  const manifestDigest = (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { latest: string }).latest;
  return { manifestDigest, manifest: fs.readFileSync(path.join(blobsDir, manifestDigest.replace(':', '-'))), blobsDir };
}

function populateRootfs(root: string, busybox: string): void {
  for (const d of ['bin', 'etc', 'tmp', 'data', 'usr/bin']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) fs.symlinkSync('busybox', path.join(root, 'bin', applet));
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nsandfleet:x:1000:1000:sandfleet:/tmp:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nsandfleet:x:1000:\n');
}

function digestOf(data: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/** A read-only registry v2 API for the demo image only. */
export function demoRegistryRoutes(layout: Layout): Hono {
  const app = new Hono();
  const repo = `/${DEMO_IMAGE}`;
  app.get('/', (c) => c.json({}));
  app.on(['GET', 'HEAD'], `${repo}/manifests/:ref`, (c) => {
    const ref = c.req.param('ref');
    if (ref !== 'latest' && ref !== layout.manifestDigest) return c.json({ errors: [{ code: 'MANIFEST_UNKNOWN', message: `manifest ${ref} unknown` }] }, 404);
    return blobResponse(c.req.method, layout.manifest, MANIFEST_TYPE, layout.manifestDigest);
  });
  app.on(['GET', 'HEAD'], `${repo}/blobs/:digest{sha256:[a-f0-9]{64}}`, (c) => {
    const file = path.join(layout.blobsDir, c.req.param('digest').replace(':', '-'));
    if (!fs.existsSync(file)) return c.json({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }, 404);
    return blobResponse(c.req.method, fs.readFileSync(file), 'application/octet-stream', c.req.param('digest'));
  });
  app.all('*', (c) => c.json({ errors: [{ code: 'NAME_UNKNOWN', message: 'only the demo image is served here' }] }, 404));
  return app;
}

function blobResponse(method: string, data: Buffer, contentType: string, digest: string): Response {
  return new Response(method === 'HEAD' ? null : new Uint8Array(data), {
    headers: { 'Content-Type': contentType, 'Docker-Content-Digest': digest, 'Content-Length': String(data.length) },
  });
}
