import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { formatSize, ImageLimitError } from './limits.js';
import { privateDir } from './private-dir.js';

export interface EnsureOptions {
  /** Sees the number of bytes written (0 and `cached` when the blob was already there). */
  onDone?: (bytes: number, cached: boolean) => void;
  /** The download fails as soon as it exceeds this many bytes. */
  maxBytes?: number;
}

/**
 * Content-addressed blobs under `<root>/sha256/<hex>`. A blob is written to a temporary file,
 * hashed while it streams, and renamed into place only when the digest matches, so a reader never
 * sees a partial or corrupt blob. Concurrent pulls of the same digest in this process share one
 * download; across processes the rename makes the last writer win with identical bytes.
 */
export class BlobStore {
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(readonly root: string) {}

  pathOf(digest: string): string {
    return path.join(this.root, 'sha256', hexOf(digest));
  }

  async has(digest: string): Promise<boolean> {
    return fs.access(this.pathOf(digest)).then(() => true, () => false);
  }

  /**
   * Returns the blob's path, downloading it with `open` when it is not cached yet. A download is
   * hashed as it streams and kept only when its sha256 is `digest`.
   */
  async ensure(digest: string, open: () => Promise<Response>, options: EnsureOptions = {}): Promise<string> {
    const { onDone } = options;
    const final = this.pathOf(digest);
    if (await this.has(digest)) {
      onDone?.(0, true);
      return final;
    }
    let pending = this.inFlight.get(digest);
    if (!pending) {
      pending = this.download(digest, open, options).finally(() => this.inFlight.delete(digest));
      this.inFlight.set(digest, pending);
    } else {
      pending = pending.then((p) => {
        onDone?.(0, true);
        return p;
      });
    }
    return pending;
  }

  private async download(digest: string, open: () => Promise<Response>, { onDone, maxBytes = Infinity }: EnsureOptions): Promise<string> {
    const final = this.pathOf(digest);
    await privateDir(this.root);
    await privateDir(path.dirname(final));
    const tmpDir = path.join(this.root, 'tmp');
    await privateDir(tmpDir);
    const tmp = path.join(tmpDir, `${hexOf(digest)}.${randomBytes(6).toString('hex')}`);
    const response = await open();
    if (!response.body) throw new Error(`blob ${digest}: empty response body`);
    const declared = Number(response.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBytes) {
      await response.body.cancel();
      throw new ImageLimitError(`blob ${digest} is larger than the ${formatSize(maxBytes)} limit`);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes > maxBytes) return cb(new ImageLimitError(`blob ${digest} is larger than the ${formatSize(maxBytes)} limit`));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), hasher, createWriteStream(tmp, { mode: 0o600 }));
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== digest) throw new Error(`blob digest mismatch: expected ${digest}, got ${actual}`);
      await fs.rename(tmp, final);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    onDone?.(bytes, false);
    return final;
  }
}

export function hexOf(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m?.[1]) throw new Error(`unsupported digest ${digest}`);
  return m[1];
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
