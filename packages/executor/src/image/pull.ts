import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DockerAuthConfig } from '@sandfleet/protocol';
import { RegistryAddressPolicy, type Resolver } from './address-policy.js';
import { findCredentials } from './auth.js';
import { BlobStore, sha256Digest } from './blob-store.js';
import { RootfsCache, rootfsKey } from './cache.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import {
  DEFAULT_IMAGE_CACHE_BYTES, DEFAULT_IMAGE_MAX_BYTES, DEFAULT_IMAGE_MAX_ENTRIES, formatSize, ImageLimitError,
  MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, UnpackBudget, type ImageLimits,
} from './limits.js';
import { mirrorsFor, parseMirror } from './mirrors.js';
import { privateDir } from './private-dir.js';
import { manifestReference, parseReference, registryBaseUrl, type ImageReference } from './reference.js';
import { ImagePullError, MANIFEST_ACCEPT, RegistryEndpoint } from './registry.js';
import { ID_RANGE, ID_SHIFT } from './ids.js';
import { readLimited } from './registry-http.js';
import { applyLayer, verifyLayer } from './unpack.js';

export interface PulledImage {
  reference: ImageReference;
  /** Read-only, shared, unpacked root filesystem (ids shifted by the request's idShift). */
  rootfs: string;
  configDigest: string;
  config: ImageConfig;
}

/** An image's manifest and config, fetched and checked; its layers not yet downloaded. */
export interface ResolvedImage {
  reference: ImageReference;
  /** Where the manifest came from (a mirror or the image's registry); the layers come from there too. */
  endpoint: RegistryEndpoint;
  /** The sha256 of the config blob: Docker's image id. */
  configDigest: string;
  /** The config blob in the blob store (its digest verified). */
  configPath: string;
  config: ImageConfig;
  /** In order, each with the config's diff_id for it. */
  layers: { digest: string; mediaType: string; size: number | undefined; diffId: string }[];
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
const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** An index may point at an index; deeper nesting is refused. */
const MAX_INDEX_DEPTH = 2;

export interface ImageStoreOptions {
  /** EXECUTOR_ALLOWED_PRIVATE_REGISTRIES: hosts (any port) or host:port a pull may reach on private addresses. */
  allowedPrivateRegistries?: readonly string[] | undefined;
  /** EXECUTOR_IMAGE_MAX_SIZE: each layer, all blobs together and the unpacked image. */
  maxImageBytes?: number | undefined;
  /** EXECUTOR_IMAGE_CACHE_SIZE: unpacked root filesystems plus blobs, before LRU eviction. */
  cacheBytes?: number | undefined;
  /** Tar entries of one image. */
  maxEntries?: number | undefined;
  /** Name resolution for registry hosts (tests inject one). */
  resolver?: Resolver | undefined;
}

/**
 * Pulls images over the registry v2 HTTP API into `<stateDir>/images`: blobs by digest under
 * `blobs/sha256/`, each image unpacked once under `rootfs/<key>/`, where the key covers the config
 * digest and every layer digest. Each layer is checked against the config's diff_ids as it is
 * unpacked, so an image that reuses another image's config with its own layers fails instead of
 * taking the other image's cache slot. The manifest is always fetched with the job's own
 * credentials, so a cached private image is served only to jobs that may pull it. Mirrors are
 * tried in order before the image's own registry, like Docker's `registry-mirrors`; a plain
 * mirror URL serves Docker Hub, `registry=URL` another registry. The first endpoint that has the
 * manifest is used for all blobs.
 */
export class ImageStore {
  readonly blobs: BlobStore;
  private readonly unpacking = new Map<string, Promise<number | undefined>>();
  private readonly policy: RegistryAddressPolicy;
  private readonly limits: ImageLimits;
  private readonly cache: RootfsCache;

  constructor(
    readonly stateDir: string,
    private readonly mirrors: readonly string[] = [],
    options: ImageStoreOptions = {},
  ) {
    this.blobs = new BlobStore(path.join(stateDir, 'images', 'blobs'));
    // Mirrors are the operator's own choice: they may live on private addresses.
    const mirrorHosts = mirrors.map((m) => parseMirror(m).url).flatMap((u) => URL.canParse(u) ? [new URL(u).host] : []);
    this.policy = new RegistryAddressPolicy([...(options.allowedPrivateRegistries ?? []), ...mirrorHosts], options.resolver);
    this.limits = { maxImageBytes: options.maxImageBytes ?? DEFAULT_IMAGE_MAX_BYTES, maxEntries: options.maxEntries ?? DEFAULT_IMAGE_MAX_ENTRIES };
    this.cache = new RootfsCache(path.join(stateDir, 'images'), options.cacheBytes ?? DEFAULT_IMAGE_CACHE_BYTES, this.blobs);
  }

  async pull(image: string, request: PullRequest): Promise<PulledImage> {
    const started = Date.now();
    const resolved = await this.resolve(image, request);
    const { reference, configDigest, config, layers } = resolved;
    const idShift = request.idShift ?? ID_SHIFT;
    const rootfs = path.join(this.stateDir, 'images', idShift === ID_SHIFT ? 'rootfs' : `rootfs-shift${idShift}`, rootfsKey(configDigest, layers.map((l) => l.digest)));
    await privateDir(path.join(this.stateDir, 'images'));
    if (await exists(rootfs)) {
      await this.cache.touch(rootfs);
      return { reference, rootfs, configDigest, config };
    }
    await this.failingAsPull(resolved, request.signal, async () => {
      await this.fetchLayers(resolved, request);
      const bytes = await this.unpackOnce(rootfs, layers, layers.map((l) => l.diffId), idShift);
      await this.cache.touch(rootfs, bytes === undefined ? undefined : { bytes, blobs: [configDigest, ...layers.map((l) => l.digest)] });
    });
    request.progress(`pulled ${reference.canonical} from ${resolved.endpoint.label} (${layers.length} layer${layers.length === 1 ? '' : 's'}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await this.cache.evict().catch(() => {});
    return { reference, rootfs, configDigest, config };
  }

  /**
   * Whether an image pulled earlier is still unpacked here; when it is, it counts as just used
   * (eviction goes by last use). A job's later steps with the same reference take it this way
   * instead of resolving the reference at the registry again.
   */
  async reuse(image: PulledImage): Promise<boolean> {
    if (!(await exists(image.rootfs))) return false;
    await this.cache.touch(image.rootfs);
    return true;
  }

  /**
   * The manifest and config of `image`, fetched with the request's credentials (through the
   * mirrors first) and checked against the budgets; no layer is downloaded yet.
   */
  async resolve(image: string, request: PullRequest): Promise<ResolvedImage> {
    const reference = parseReference(image);
    const { endpoint, manifest } = await this.resolveManifest(reference, request.auth, request);
    const fail = (detail: string) => new ImagePullError(reference.canonical, endpoint.label, detail);
    const descriptors = checkedLayers(manifest, this.limits, fail);
    const configDigest = manifest.config!.digest;
    const config = await this.readConfig(endpoint, reference, configDigest, descriptors.length, request.signal, fail);
    const diffIds = diffIdsOf(config)!;
    const layers = descriptors.map((d, i) => ({ digest: d.digest, mediaType: d.mediaType ?? '', size: d.size, diffId: diffIds[i]! }));
    return { reference, endpoint, configDigest, configPath: this.blobs.pathOf(configDigest), config: parseImageConfig(config), layers };
  }

  /**
   * The verified blobs of a resolved image for a program that unpacks it itself (dockerd, through
   * `docker load`): every layer downloaded within the budgets and read once through the unpacker's
   * checks (entries, unpacked bytes, diff_id) without being written anywhere. The blobs are
   * recorded in the cache, so eviction accounts for them like for an unpacked image's.
   */
  async fetchVerified(resolved: ResolvedImage, request: PullRequest): Promise<string[]> {
    const started = Date.now();
    const { reference, configDigest, layers } = resolved;
    const paths = await this.failingAsPull(resolved, request.signal, async () => {
      const blobs = await this.fetchLayers(resolved, request);
      const budget = new UnpackBudget(this.limits);
      for (const [i, layer] of layers.entries()) {
        await verifyLayer(blobs[i]!, layer.mediaType, { expectedDiffId: layer.diffId, budget }).catch((err: unknown) => {
          throw err instanceof Error ? new Error(`layer ${shortDigest(layer.digest)}: ${err.message}`, { cause: err }) : err;
        });
      }
      // No rootfs is made: the record only carries the blobs (and the unpacked size dockerd stores).
      const loaded = path.join(this.stateDir, 'images', 'loaded', rootfsKey(configDigest, layers.map((l) => l.digest)));
      await this.cache.touch(loaded, { bytes: 0, blobs: [configDigest, ...layers.map((l) => l.digest)] });
      return blobs;
    });
    request.progress(`pulled ${reference.canonical} from ${resolved.endpoint.label} (${layers.length} layer${layers.length === 1 ? '' : 's'}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await this.cache.evict().catch(() => {});
    return paths;
  }

  /** Downloads every layer blob (cached ones are reused) and marks each as wanted. */
  private async fetchLayers(resolved: ResolvedImage, request: PullRequest): Promise<string[]> {
    const { endpoint, reference } = resolved;
    const paths: string[] = [];
    for (const layer of resolved.layers) {
      const blob = await this.blobs.ensure(layer.digest, () => this.openBlob(endpoint, reference, layer.digest, request.signal), {
        maxBytes: layer.size ?? this.limits.maxImageBytes,
        onDone: (bytes, cached) => request.progress(`pulling ${reference.canonical} … layer ${shortDigest(layer.digest)} ${cached ? 'cached' : formatBytes(bytes)}`),
      });
      // Marks the blob as wanted, so a concurrent eviction leaves it for this unpack.
      const now = new Date();
      await fs.utimes(blob, now, now).catch(() => {});
      paths.push(blob);
    }
    return paths;
  }

  /** Runs `fn`; its failures (other than aborts and pull errors) become an ImagePullError naming the endpoint. */
  private async failingAsPull<T>(resolved: ResolvedImage, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ImagePullError || signal.aborted || !(err instanceof Error)) throw err;
      throw new ImagePullError(resolved.reference.canonical, resolved.endpoint.label, err.message, { cause: err });
    }
  }

  /** The image config blob, bounded in size and checked to describe exactly `layerCount` layers. */
  private async readConfig(endpoint: RegistryEndpoint, reference: ImageReference, digest: string, layerCount: number, signal: AbortSignal, fail: (d: string) => ImagePullError): Promise<unknown> {
    const configPath = await this.blobs.ensure(digest, () => this.openBlob(endpoint, reference, digest, signal), { maxBytes: MAX_CONFIG_BYTES }).catch((err: unknown) => {
      if (err instanceof ImageLimitError) throw fail(`the image config ${err.message.replace(/^blob \S+ /, '')}`);
      throw err instanceof ImagePullError || signal.aborted || !(err instanceof Error) ? err : fail(err.message);
    });
    if ((await fs.stat(configPath)).size > MAX_CONFIG_BYTES) throw fail(`the image config is larger than the ${formatSize(MAX_CONFIG_BYTES)} limit`);
    let config: unknown;
    try {
      config = JSON.parse(await fs.readFile(configPath, 'utf8'));
    } catch {
      throw fail('the image config is not valid JSON');
    }
    const diffIds = diffIdsOf(config);
    if (!diffIds || diffIds.length !== layerCount || !diffIds.every((d) => DIGEST.test(d))) {
      throw fail(`the image config lists ${diffIds?.length ?? 'no'} layer diff_ids for a manifest with ${layerCount} layer${layerCount === 1 ? '' : 's'}`);
    }
    return config;
  }

  private async resolveManifest(reference: ImageReference, auth: DockerAuthConfig | undefined, request: PullRequest) {
    const origin = registryBaseUrl(reference.registry);
    // A mirror only ever sees its own credentials, the origin only the origin's.
    const candidates = [
      ...mirrorsFor(reference.registry, this.mirrors).map((base) => ({ base, label: `mirror ${base}`, creds: findCredentials(auth, new URL(base).host) })),
      { base: origin, label: reference.registry, creds: findCredentials(auth, reference.registry) },
    ];
    const failures: string[] = [];
    let lastError: ImagePullError | undefined;
    for (const { base, label, creds } of candidates) {
      const endpoint = new RegistryEndpoint(base, reference.repository, creds, label, reference.canonical, this.policy);
      request.progress(`pulling ${reference.canonical} from ${label}`);
      try {
        const manifest = await this.fetchManifest(endpoint, reference, manifestReference(reference), request.signal, 0);
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

  private async fetchManifest(endpoint: RegistryEndpoint, reference: ImageReference, ref: string, signal: AbortSignal, depth: number): Promise<Manifest> {
    const fail = (detail: string) => new ImagePullError(reference.canonical, endpoint.label, detail);
    const response = await endpoint.get(`manifests/${ref}`, { accept: MANIFEST_ACCEPT }, signal);
    if (response.status === 404) {
      await response.body?.cancel();
      throw new ImagePullError(reference.canonical, endpoint.label, `manifest ${ref} not found (HTTP 404)`, { status: 404 });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ImagePullError(reference.canonical, endpoint.label, `manifest ${ref}: HTTP ${response.status}`, { status: response.status });
    }
    let body: Buffer;
    try {
      body = await readLimited(response, MAX_MANIFEST_BYTES, `manifest ${ref}`);
    } catch (err) {
      if (err instanceof ImageLimitError) throw fail(err.message);
      throw err;
    }
    if (ref.startsWith('sha256:') && sha256Digest(body) !== ref) {
      throw fail(`manifest digest mismatch: asked for ${ref}, got ${sha256Digest(body)}`);
    }
    let manifest: Manifest;
    try {
      manifest = JSON.parse(body.toString('utf8')) as Manifest;
    } catch {
      // Never echo the body: it is the registry's, and lands in the job log.
      throw fail(`manifest ${ref} is not valid JSON`);
    }
    if (manifest === null || typeof manifest !== 'object') throw fail(`manifest ${ref} is not a JSON object`);
    const mediaType = manifest.mediaType ?? response.headers.get('content-type') ?? '';
    if (INDEX_TYPES.includes(mediaType) || (manifest.manifests && !manifest.layers)) {
      if (depth >= MAX_INDEX_DEPTH) throw fail('manifest lists are nested too deeply');
      const arch = process.arch === 'x64' ? 'amd64' : process.arch;
      const chosen = Array.isArray(manifest.manifests) ? manifest.manifests.find((m) => m?.platform?.os === 'linux' && m.platform.architecture === arch) : undefined;
      if (!chosen) {
        const listed = Array.isArray(manifest.manifests) ? manifest.manifests : [];
        const have = listed.slice(0, 10).map((m) => `${safeToken(m?.platform?.os, 20) ?? '?'}/${safeToken(m?.platform?.architecture, 20) ?? '?'}`).join(', ') + (listed.length > 10 ? ', …' : '');
        throw fail(`no linux/${arch} image in the manifest list (has ${have || 'nothing'})`);
      }
      if (typeof chosen.digest !== 'string' || !DIGEST.test(chosen.digest)) throw fail('the manifest list names an invalid digest');
      return this.fetchManifest(endpoint, reference, chosen.digest, signal, depth + 1);
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

  /**
   * Unpacks into a private temporary directory and renames it into place, once per image.
   * Returns the unpacked size (uncompressed tar bytes), or undefined when another pull made it.
   */
  private unpackOnce(rootfs: string, layers: readonly { digest: string; mediaType: string }[], diffIds: string[] | undefined, idShift: number): Promise<number | undefined> {
    let pending = this.unpacking.get(rootfs);
    if (!pending) {
      pending = (async () => {
        if (await exists(rootfs)) return undefined;
        const tmp = `${path.dirname(rootfs)}/.tmp-${path.basename(rootfs)}-${randomBytes(4).toString('hex')}`;
        await privateDir(path.dirname(rootfs));
        // The image's own `/`: what steps see as the root directory's mode.
        await fs.mkdir(tmp, { mode: 0o755 });
        await fs.chown(tmp, idShift, idShift);
        const budget = new UnpackBudget(this.limits);
        try {
          for (const [i, layer] of layers.entries()) {
            await applyLayer(tmp, this.blobs.pathOf(layer.digest), layer.mediaType, { idShift, idRange: ID_RANGE, expectedDiffId: diffIds?.[i], budget })
              .catch((err: unknown) => {
                throw err instanceof Error ? new Error(`layer ${shortDigest(layer.digest)}: ${err.message}`, { cause: err }) : err;
              });
          }
          await fs.rename(tmp, rootfs);
        } catch (err) {
          await fs.rm(tmp, { recursive: true, force: true });
          // Another process finished the same image first: theirs is as good as ours.
          if (!(await exists(rootfs))) throw err;
          return undefined;
        }
        return budget.bytesSpent;
      })().finally(() => this.unpacking.delete(rootfs));
      this.unpacking.set(rootfs, pending);
    }
    return pending;
  }
}

/** The manifest's layers, checked against the image budgets before anything is downloaded. */
function checkedLayers(manifest: Manifest, limits: ImageLimits, fail: (d: string) => ImagePullError): Descriptor[] {
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) {
    const schema = typeof manifest.schemaVersion === 'number' ? manifest.schemaVersion : '?';
    throw fail(`unsupported manifest (schemaVersion ${schema}, ${safeToken(manifest.mediaType, 100) ?? 'no or an invalid media type'})`);
  }
  const descriptors = [manifest.config, ...manifest.layers];
  let total = 0;
  for (const d of descriptors) {
    if (!d || typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw fail('the manifest names an invalid digest (only sha256 is supported)');
    if (d.size !== undefined && (!Number.isSafeInteger(d.size) || d.size < 0)) throw fail(`the manifest gives blob ${d.digest} an invalid size`);
    total += d.size ?? 0;
    if ((d.size ?? 0) > limits.maxImageBytes || total > limits.maxImageBytes) {
      throw fail(`the image is larger than the ${formatSize(limits.maxImageBytes)} limit (EXECUTOR_IMAGE_MAX_SIZE)`);
    }
  }
  return manifest.layers;
}

/** A registry-supplied word (media type, os, architecture) fit for a message, or undefined. */
function safeToken(value: unknown, max: number): string | undefined {
  return typeof value === 'string' && value.length <= max && /^[\w.+/-]+$/.test(value) ? value : undefined;
}

function diffIdsOf(config: unknown): string[] | undefined {
  const ids = (config as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  return Array.isArray(ids) && ids.every((d) => typeof d === 'string') ? (ids as string[]) : undefined;
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
