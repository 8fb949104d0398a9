import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DockerAuthConfig } from '@sandfleet/protocol';
import { findCredentials } from './auth.js';
import { BlobStore, hexOf, sha256Digest } from './blob-store.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { manifestReference, parseReference, registryBaseUrl, type ImageReference } from './reference.js';
import { ImagePullError, MANIFEST_ACCEPT, RegistryEndpoint } from './registry.js';
import { ID_RANGE, ID_SHIFT } from './ids.js';
import { applyLayer } from './unpack.js';

export interface PulledImage {
  reference: ImageReference;
  /** Read-only, shared, unpacked root filesystem (ids shifted by the request's idShift). */
  rootfs: string;
  configDigest: string;
  config: ImageConfig;
}

export interface PullRequest {
  /**
   * How image ids are stored on disk: ID_SHIFT (default) for runtimes that map them back through a
   * user namespace, 0 for gVisor, whose gofer serves files with their on-disk owners. Each kind is
   * unpacked once (`rootfs/` and `rootfs-unshifted/`).
   */
  idShift?: number;
  /** The registry credentials decided for the job (jobRegistryAuth). */
  auth?: DockerAuthConfig | undefined;
  progress: (line: string) => void;
  signal: AbortSignal;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

interface Manifest {
  schemaVersion?: number;
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];

/**
 * Pulls images over the registry v2 HTTP API into `<stateDir>/images`: blobs by digest under
 * `blobs/sha256/`, each image unpacked once under `rootfs/<config digest>/`. Mirrors are tried in
 * order before the image's own registry, like Docker's `registry-mirrors` (a mirror serves the
 * same repository paths); the first endpoint that has the manifest is used for all blobs.
 */
export class ImageStore {
  readonly blobs: BlobStore;
  private readonly unpacking = new Map<string, Promise<string>>();

  constructor(
    readonly stateDir: string,
    private readonly mirrors: readonly string[] = [],
  ) {
    this.blobs = new BlobStore(path.join(stateDir, 'images', 'blobs'));
  }

  async pull(image: string, request: PullRequest): Promise<PulledImage> {
    const reference = parseReference(image);
    const started = Date.now();
    const { endpoint, manifest } = await this.resolveManifest(reference, request.auth, request);
    if (!manifest.config?.digest || !manifest.layers) {
      throw new ImagePullError(reference.canonical, endpoint.label, `unsupported manifest (schemaVersion ${manifest.schemaVersion ?? '?'}, ${manifest.mediaType ?? 'no media type'})`);
    }
    const configDigest = manifest.config.digest;
    const configPath = await this.blobs.ensure(configDigest, () => this.openBlob(endpoint, reference, configDigest, request.signal));
    const config = parseImageConfig(JSON.parse(await fs.readFile(configPath, 'utf8')));
    const idShift = request.idShift ?? ID_SHIFT;
    const rootfs = path.join(this.stateDir, 'images', idShift === ID_SHIFT ? 'rootfs' : `rootfs-shift${idShift}`, hexOf(configDigest));
    if (!(await exists(rootfs))) {
      const layers = manifest.layers;
      for (const layer of layers) {
        await this.blobs.ensure(layer.digest, () => this.openBlob(endpoint, reference, layer.digest, request.signal), (bytes, cached) => {
          request.progress(`pulling ${reference.canonical} … layer ${shortDigest(layer.digest)} ${cached ? 'cached' : formatBytes(bytes)}`);
        });
      }
      await this.unpackOnce(rootfs, layers, idShift);
      request.progress(`pulled ${reference.canonical} from ${endpoint.label} (${layers.length} layer${layers.length === 1 ? '' : 's'}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    return { reference, rootfs, configDigest, config };
  }

  private async resolveManifest(reference: ImageReference, auth: DockerAuthConfig | undefined, request: PullRequest) {
    const origin = registryBaseUrl(reference.registry);
    const candidates = [
      ...this.mirrors.map((m) => ({ base: m.replace(/\/+$/, ''), label: `mirror ${m.replace(/\/+$/, '')}` })),
      { base: origin, label: reference.registry },
    ];
    const failures: string[] = [];
    let lastError: ImagePullError | undefined;
    for (const { base, label } of candidates) {
      const host = new URL(base).host;
      const creds = findCredentials(auth, host) ?? findCredentials(auth, reference.registry);
      const endpoint = new RegistryEndpoint(base, reference.repository, creds, label, reference.canonical);
      request.progress(`pulling ${reference.canonical} from ${label}`);
      try {
        const manifest = await this.fetchManifest(endpoint, reference, manifestReference(reference), request.signal);
        return { endpoint, manifest };
      } catch (err) {
        if (!(err instanceof ImagePullError)) throw err;
        lastError = err;
        failures.push(`${label}: ${err.message.replace(/^cannot pull \S+ from \S+(?: \S+)?: /, '')}`);
      }
    }
    if (candidates.length === 1 && lastError) throw lastError;
    throw new ImagePullError(reference.canonical, candidates.map((c) => c.label).join(', '), `every endpoint failed (${failures.join('; ')})`, { status: lastError?.status });
  }

  private async fetchManifest(endpoint: RegistryEndpoint, reference: ImageReference, ref: string, signal: AbortSignal): Promise<Manifest> {
    const response = await endpoint.get(`manifests/${ref}`, { accept: MANIFEST_ACCEPT }, signal);
    if (response.status === 404) {
      await response.body?.cancel();
      throw new ImagePullError(reference.canonical, endpoint.label, `manifest ${ref} not found (HTTP 404)`, { status: 404 });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ImagePullError(reference.canonical, endpoint.label, `manifest ${ref}: HTTP ${response.status}`, { status: response.status });
    }
    const body = Buffer.from(await response.arrayBuffer());
    if (ref.startsWith('sha256:') && sha256Digest(body) !== ref) {
      throw new ImagePullError(reference.canonical, endpoint.label, `manifest digest mismatch: asked for ${ref}, got ${sha256Digest(body)}`);
    }
    const manifest = JSON.parse(body.toString('utf8')) as Manifest;
    const mediaType = manifest.mediaType ?? response.headers.get('content-type') ?? '';
    if (INDEX_TYPES.includes(mediaType) || (manifest.manifests && !manifest.layers)) {
      const arch = process.arch === 'x64' ? 'amd64' : process.arch;
      const chosen = manifest.manifests?.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch);
      if (!chosen) {
        const have = (manifest.manifests ?? []).map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(', ');
        throw new ImagePullError(reference.canonical, endpoint.label, `no linux/${arch} image in the manifest list (has ${have || 'nothing'})`);
      }
      return this.fetchManifest(endpoint, reference, chosen.digest, signal);
    }
    return manifest;
  }

  private async openBlob(endpoint: RegistryEndpoint, reference: ImageReference, digest: string, signal: AbortSignal): Promise<Response> {
    const response = await endpoint.get(`blobs/${digest}`, {}, signal);
    if (!response.ok) {
      await response.body?.cancel();
      throw new ImagePullError(reference.canonical, endpoint.label, `blob ${digest}: HTTP ${response.status}`, { status: response.status });
    }
    return response;
  }

  /** Unpacks into a private temporary directory and renames it into place, once per image. */
  private unpackOnce(rootfs: string, layers: Descriptor[], idShift: number): Promise<string> {
    let pending = this.unpacking.get(rootfs);
    if (!pending) {
      pending = (async () => {
        if (await exists(rootfs)) return rootfs;
        const tmp = `${path.dirname(rootfs)}/.tmp-${path.basename(rootfs)}-${randomBytes(4).toString('hex')}`;
        await fs.mkdir(tmp, { recursive: true, mode: 0o755 });
        await fs.chown(tmp, idShift, idShift);
        try {
          for (const layer of layers) {
            await applyLayer(tmp, this.blobs.pathOf(layer.digest), layer.mediaType ?? '', { idShift, idRange: ID_RANGE });
          }
          await fs.rename(tmp, rootfs);
        } catch (err) {
          await fs.rm(tmp, { recursive: true, force: true });
          // Another process finished the same image first: theirs is as good as ours.
          if (!(await exists(rootfs))) throw err;
        }
        return rootfs;
      })().finally(() => this.unpacking.delete(rootfs));
      this.unpacking.set(rootfs, pending);
    }
    return pending;
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}

export function shortDigest(digest: string): string {
  return `${digest.slice(0, 19)}…`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(2)} GB`;
}
