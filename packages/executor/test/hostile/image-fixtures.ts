/**
 * Hostile images and registries for the image tests: a tar writer that can produce what `tar`
 * refuses to (out-of-range ids, huge header records, links anywhere), images assembled from such
 * layers, an in-process registry v2 server that can misbehave on demand, and a spy listener that
 * counts connections (to prove that a refused target was never contacted). Everything listens on
 * loopback.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { gzipSync } from 'node:zlib';

export interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  data: Buffer;
}

export function blobOf(data: Buffer, mediaType: string): Blob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, mediaType, data };
}

export interface TarSpec {
  path: string;
  /** '0' file (default), '1' hard link, '2' symlink, '5' directory, 'x' PAX header, 'L' GNU long name. */
  type?: string;
  data?: Buffer | string;
  linkPath?: string;
  uid?: number;
  gid?: number;
  mode?: number;
  /** PAX records written in an 'x' header before this entry. */
  pax?: Record<string, string>;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0').slice(-(width - 1)) + '\0';
}

function header(name: string, type: string, size: number, spec: Omit<TarSpec, 'path'>): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write(octal(spec.mode ?? (type === '5' ? 0o755 : 0o644), 8), 100, 'ascii');
  h.write(octal(Math.min(spec.uid ?? 0, 0o7777777), 8), 108, 'ascii');
  h.write(octal(Math.min(spec.gid ?? 0, 0o7777777), 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type, 156, 'ascii');
  h.write((spec.linkPath ?? '').slice(0, 100), 157, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

function padded(data: Buffer): Buffer[] {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return pad ? [data, Buffer.alloc(pad)] : [data];
}

export function paxRecords(records: Record<string, string>): Buffer {
  return Buffer.concat(Object.entries(records).map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    return Buffer.from(`${len}${body}`);
  }));
}

/** An uncompressed tar stream with exactly these entries. */
export function tar(entries: TarSpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const data = paxRecords(e.pax);
      parts.push(header('PaxHeader', 'x', data.length, {}), ...padded(data));
    }
    const type = e.type ?? '0';
    const data = Buffer.from(e.data ?? '');
    parts.push(header(e.path, type, type === '0' || type === 'x' || type === 'L' ? data.length : 0, e));
    if (type === '0' || type === 'x' || type === 'L') parts.push(...padded(data));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

export function diffIdOf(uncompressed: Buffer): string {
  return `sha256:${createHash('sha256').update(uncompressed).digest('hex')}`;
}

export interface HostileImage {
  manifest: Blob;
  config: Blob;
  layers: Blob[];
}

const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** An image of these (uncompressed) layers; `config` reuses another image's config blob. */
export function imageOf(layerTars: Buffer[], options: { config?: Blob; user?: string; diffIds?: string[] } = {}): HostileImage {
  const layers = layerTars.map((t) => blobOf(gzipSync(t), LAYER_TYPE));
  const config = options.config ?? blobOf(Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { User: options.user ?? '', Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: options.diffIds ?? layerTars.map(diffIdOf) },
  })), 'application/vnd.oci.image.config.v1+json');
  return { manifest: manifestOf(config, layers), config, layers };
}

export function manifestOf(config: Pick<Blob, 'digest' | 'size' | 'mediaType'>, layers: Pick<Blob, 'digest' | 'size' | 'mediaType'>[]): Blob {
  return blobOf(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  })), 'application/vnd.oci.image.manifest.v1+json');
}

export interface SeenRequest {
  path: string;
  authorization: string | undefined;
}

/** Lets a test answer a request itself; return true when it did. */
export type Override = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean;

export interface HostileRegistry {
  /** `127.0.0.1:<port>`. */
  host: string;
  url: string;
  port: number;
  requests: SeenRequest[];
  connections: () => number;
  push(repository: string, tag: string, image: HostileImage): void;
  /** Serves these raw bytes as the manifest for `repository:tag`. */
  pushRaw(repository: string, tag: string, manifest: Blob, blobs: Blob[]): void;
  override: Override | undefined;
  stop(): Promise<void>;
}

/** A registry v2 API in this process, optionally wanting Basic credentials. */
export async function startHostileRegistry(options: { auth?: { username: string; password: string }; listenHost?: string; tls?: { key: string; cert: string } } = {}): Promise<HostileRegistry> {
  const manifests = new Map<string, Blob>();
  const blobs = new Map<string, Blob>();
  const requests: SeenRequest[] = [];
  let connections = 0;
  const wanted = options.auth ? `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}` : undefined;
  const registry: HostileRegistry = {
    host: '', url: '', port: 0, requests,
    connections: () => connections,
    override: undefined,
    push(repository, tag, image) {
      this.pushRaw(repository, tag, image.manifest, [image.config, ...image.layers]);
    },
    pushRaw(repository, tag, manifest, extra) {
      manifests.set(`${repository}:${tag}`, manifest);
      manifests.set(`${repository}:${manifest.digest}`, manifest);
      for (const b of extra) blobs.set(`${repository}:${b.digest}`, b);
    },
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://registry');
    requests.push({ path: url.pathname, authorization: req.headers.authorization });
    if (registry.override?.(req, res, url)) return;
    if (wanted && req.headers.authorization !== wanted) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"' }).end();
      return;
    }
    if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    const blob = m ? (m[2] === 'manifests' ? manifests : blobs).get(`${m[1]}:${m[3]}`) : undefined;
    if (!blob) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': blob.mediaType, 'content-length': blob.data.length }).end(blob.data);
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, options.listenHost ?? '127.0.0.1', r));
  registry.port = (server.address() as net.AddressInfo).port;
  registry.host = `${options.listenHost ?? '127.0.0.1'}:${registry.port}`;
  registry.url = `${options.tls ? 'https' : 'http'}://${registry.host}`;
  return registry;
}

export interface Spy {
  host: string;
  port: number;
  connections: () => number;
  stop(): Promise<void>;
}

/** A listener that only counts connections (and answers a canary body nobody should see). */
export async function startSpy(listenHost = '127.0.0.1', port = 0): Promise<Spy> {
  let connections = 0;
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"SPY-CANARY-TOKEN"}'));
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(port, listenHost, r));
  const actual = (server.address() as net.AddressInfo).port;
  return {
    host: `${listenHost}:${actual}`,
    port: actual,
    connections: () => connections,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export const noop = (): void => {};
export const timeout = (): AbortSignal => AbortSignal.timeout(30_000);
