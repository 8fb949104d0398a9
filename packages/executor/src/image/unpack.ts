import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import fsp from 'node:fs/promises';
import fs from 'node:fs';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { MAX_TAR_HEADER_RECORD_BYTES, type UnpackBudget } from './limits.js';
import { ByteReader, TarReader, type TarEntry } from './tar-reader.js';

/**
 * Applies OCI/Docker layers to a root filesystem directory, as root on the host.
 *
 * Safety: a layer is untrusted input. Every path is resolved component by component *inside* the
 * rootfs (symlinks are followed as if the rootfs were `/`, `..` is clamped at the root), and the
 * final component is never followed, so no entry — not even a symlink planted by an earlier layer
 * — can make us write outside the rootfs. Nothing else writes to a rootfs while it is being
 * unpacked (it lives in a private temporary directory until renamed into the cache), so resolving
 * with lstat is not racy. Device nodes and fifos are skipped (rootfs mounts are nodev anyway) and
 * setuid/setgid bits are dropped.
 *
 * Ownership: image uids/gids are shifted by `idShift` (e.g. image root becomes host uid 100000), so
 * the sandboxes' user namespaces map the image's users onto unprivileged host ids.
 */
export interface UnpackOptions {
  idShift: number;
  /** Image ids at or above this are squashed to 65534 ("nobody") before shifting. */
  idRange: number;
  /**
   * The layer's diff_id from the image config: the sha256 of its uncompressed tar. The layer is
   * refused when its content hashes differently (the config names the image's real content).
   */
  expectedDiffId?: string | undefined;
  /** Shared by all layers of an image: bounds unpacked bytes and entries. */
  budget?: UnpackBudget | undefined;
}

export class LayerVerificationError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'LayerVerificationError';
  }
}

export interface LayerStats {
  entries: number;
  skipped: number;
}

export async function applyLayer(rootfs: string, blobPath: string, mediaType: string, options: UnpackOptions): Promise<LayerStats> {
  const applier = new LayerApplier(rootfs, options);
  await readLayer(blobPath, mediaType, options, (entry, reader) => applier.apply(entry, reader));
  return applier.stats;
}

/**
 * Reads a layer as applyLayer does — its entries counted against the budget and its content
 * checked against the diff_id — without writing anything: for layers another program unpacks
 * (dockerd, after `docker load`), which must not exceed the budgets either.
 */
export async function verifyLayer(blobPath: string, mediaType: string, options: Pick<UnpackOptions, 'expectedDiffId' | 'budget'>): Promise<void> {
  await readLayer(blobPath, mediaType, options, (_entry, reader) => reader.skipData());
}

async function readLayer(blobPath: string, mediaType: string, options: Pick<UnpackOptions, 'expectedDiffId' | 'budget'>, onEntry: (entry: TarEntry, reader: TarReader) => Promise<void>): Promise<void> {
  const source = createReadStream(blobPath);
  let stream: AsyncIterable<Buffer>;
  if (/gzip/.test(mediaType) || (await isGzip(blobPath))) stream = source.pipe(createGunzip());
  else if (/zstd/.test(mediaType)) throw new Error(`zstd-compressed layers are not supported (${mediaType})`);
  else stream = source;
  const hash = createHash('sha256');
  const counted = countAndHash(stream, hash, options.budget);
  const iterator = counted[Symbol.asyncIterator]();
  const reader = new TarReader(new ByteReader(iterator), MAX_TAR_HEADER_RECORD_BYTES);
  try {
    for (let entry = await reader.next(); entry; entry = await reader.next()) {
      options.budget?.spendEntry();
      await onEntry(entry, reader);
    }
    if (options.expectedDiffId !== undefined) {
      // The diff_id covers the whole stream, end-of-archive blocks and any padding included.
      while (!(await iterator.next()).done);
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== options.expectedDiffId) {
        throw new LayerVerificationError(`layer content does not match the image config: diff_id ${options.expectedDiffId} expected, the layer's uncompressed sha256 is ${actual}`);
      }
    }
  } finally {
    source.destroy();
  }
}

/** Passes the uncompressed stream through, hashing it and spending the unpack budget. */
async function* countAndHash(stream: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>, budget: UnpackBudget | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of stream) {
    budget?.spendBytes(chunk.length);
    hash.update(chunk);
    yield chunk;
  }
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

const MAX_SYMLINKS = 255;

class LayerApplier {
  readonly stats: LayerStats = { entries: 0, skipped: 0 };
  /** Host paths this layer created; an opaque whiteout keeps them. */
  private readonly created = new Set<string>();

  constructor(private readonly root: string, private readonly options: UnpackOptions) {}

  async apply(entry: TarEntry, reader: TarReader): Promise<void> {
    const parts = cleanPath(entry.path);
    if (parts === undefined) throw new Error(`layer entry escapes the rootfs: ${quote(entry.path)}`);
    if (parts.length === 0) return; // the layer's "./" itself
    const name = parts[parts.length - 1]!;
    const parent = this.resolve(parts.slice(0, -1), true, true);
    this.stats.entries++;

    if (name === '.wh..wh..opq') {
      for (const child of fs.readdirSync(parent)) {
        const full = path.join(parent, child);
        if (!this.keep(full)) fs.rmSync(full, { recursive: true, force: true });
      }
      return;
    }
    if (name.startsWith('.wh.')) {
      const hidden = name.slice(4);
      if (hidden === '' || hidden === '.' || hidden === '..') throw new Error(`invalid whiteout ${quote(entry.path)}`);
      fs.rmSync(path.join(parent, hidden), { recursive: true, force: true });
      return;
    }

    const target = path.join(parent, name);
    const existing = lstatOrUndefined(target);
    const uid = this.mapId(entry.uid);
    const gid = this.mapId(entry.gid);
    const mode = entry.mode & 0o1777; // no setuid/setgid

    if (entry.type === '5') {
      if (!existing?.isDirectory()) {
        if (existing) fs.rmSync(target, { recursive: true, force: true });
        fs.mkdirSync(target, { mode: 0o700 });
      }
      fs.lchownSync(target, uid, gid);
      fs.chmodSync(target, mode);
      this.created.add(target);
      return;
    }
    if (existing) fs.rmSync(target, { recursive: true, force: true });

    switch (entry.type) {
      case '0':
      case '7': {
        const fd = fs.openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          await reader.readData((chunk) => {
            let off = 0;
            while (off < chunk.length) off += fs.writeSync(fd, chunk, off);
          });
          fs.fchownSync(fd, uid, gid);
          fs.fchmodSync(fd, mode);
          const mtime = Number.isFinite(entry.mtime) ? entry.mtime : 0;
          fs.futimesSync(fd, mtime, mtime);
        } finally {
          fs.closeSync(fd);
        }
        break;
      }
      case '1': {
        const linkParts = cleanPath(entry.linkPath);
        if (linkParts === undefined || linkParts.length === 0) throw new Error(`hard link escapes the rootfs: ${quote(entry.linkPath)}`);
        const source = this.resolve(linkParts, false, false);
        const st = lstatOrUndefined(source);
        if (!st || st.isDirectory()) throw new Error(`hard link ${quote(entry.path)} -> ${quote(entry.linkPath)}: target missing or a directory`);
        fs.linkSync(source, target);
        break;
      }
      case '2':
        fs.symlinkSync(entry.linkPath, target);
        fs.lchownSync(target, uid, gid);
        break;
      default:
        this.stats.skipped++; // devices, fifos, unknown types
        return;
    }
    this.created.add(target);
  }

  private keep(hostPath: string): boolean {
    if (this.created.has(hostPath)) return true;
    const prefix = hostPath + path.sep;
    for (const p of this.created) if (p.startsWith(prefix)) return true;
    return false;
  }

  private mapId(id: number): number {
    const inRange = Number.isInteger(id) && id >= 0 && id < this.options.idRange ? id : 65534;
    return inRange + this.options.idShift;
  }

  /**
   * Resolves `parts` to a host path inside the rootfs, following symlinks in every component (and
   * in the last one when `followLast`) with the rootfs as `/`. With `create`, missing directories
   * are made (owned by the image's root) and non-directories in the way are replaced.
   */
  private resolve(parts: string[], followLast: boolean, create: boolean): string {
    const queue = [...parts];
    const current: string[] = [];
    let links = 0;
    while (queue.length) {
      const part = queue.shift()!;
      if (part === '.' || part === '') continue;
      if (part === '..') {
        current.pop();
        continue;
      }
      const host = path.join(this.root, ...current, part);
      const st = lstatOrUndefined(host);
      const isLast = queue.length === 0;
      if (st?.isSymbolicLink() && (!isLast || followLast)) {
        if (++links > MAX_SYMLINKS) throw new Error(`too many symlinks resolving ${parts.join('/')}`);
        const link = fs.readlinkSync(host);
        if (link.startsWith('/')) current.length = 0;
        queue.unshift(...link.split('/'));
        continue;
      }
      if (create && (!st || !st.isDirectory())) {
        if (st) fs.rmSync(host, { recursive: true, force: true });
        fs.mkdirSync(host, { mode: 0o755 });
        fs.lchownSync(host, this.options.idShift, this.options.idShift);
      }
      current.push(part);
    }
    return path.join(this.root, ...current);
  }
}

/** A layer path for a message: quoted and cut short (a PAX path may be a megabyte long). */
function quote(p: string): string {
  return JSON.stringify(p.length > 200 ? `${p.slice(0, 200)}…` : p);
}

/** Splits a layer path into components; undefined when it tries to climb out with `..`. */
function cleanPath(p: string): string[] | undefined {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  return parts.includes('..') ? undefined : parts;
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}
