import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from './blob-store.js';
import { privateDir } from './private-dir.js';

/**
 * Bookkeeping for unpacked root filesystems: one `usage/<name>.json` per rootfs records what it
 * is made of and how big it is; the file's mtime is the rootfs's last use. When the cache (rootfs
 * and blobs together) exceeds its budget, the least recently used root filesystems go first, with
 * the blobs no remaining image needs (and no pull touched lately). A rootfs that is mounted anywhere, or was handed to a job by
 * this process recently (it is about to be mounted), is never evicted.
 */
interface UsageRecord {
  rootfs: string;
  bytes: number;
  blobs: string[];
}

/** How long after a pull a rootfs counts as in use even before it is mounted. */
const HANDED_OUT_GRACE_MS = 15 * 60_000;

/**
 * The cache key of an unpacked image: its config digest and every layer digest, in order. Two
 * images that share a config but not their layers never share a rootfs.
 */
export function rootfsKey(configDigest: string, layerDigests: readonly string[]): string {
  return createHash('sha256').update([configDigest, ...layerDigests].join('\n')).digest('hex');
}

export class RootfsCache {
  private readonly handedOut = new Map<string, number>();

  constructor(private readonly imagesDir: string, private readonly maxBytes: number, private readonly blobs: BlobStore) {}

  private usagePath(rootfs: string): string {
    return path.join(this.imagesDir, 'usage', `${path.basename(path.dirname(rootfs))}-${path.basename(rootfs)}.json`);
  }

  /** Records that `rootfs` was just handed to a job (and, after an unpack, what it holds). */
  async touch(rootfs: string, made?: { bytes: number; blobs: string[] }): Promise<void> {
    this.handedOut.set(rootfs, Date.now());
    const file = this.usagePath(rootfs);
    if (made) {
      await privateDir(path.dirname(file));
      const record: UsageRecord = { rootfs, ...made };
      await fs.writeFile(file, JSON.stringify(record), { mode: 0o600 });
      return;
    }
    const now = new Date();
    await fs.utimes(file, now, now).catch(() => {});
  }

  /** Evicts least recently used images until the cache fits its budget; returns what went. */
  async evict(): Promise<string[]> {
    const records = await this.records();
    const blobSizes = new Map<string, number>();
    for (const r of records) {
      for (const digest of r.blobs) {
        if (!blobSizes.has(digest)) blobSizes.set(digest, await fs.stat(this.blobs.pathOf(digest)).then((s) => s.size, () => 0));
      }
    }
    let total = records.reduce((sum, r) => sum + r.bytes, 0) + [...blobSizes.values()].reduce((a, b) => a + b, 0);
    if (total <= this.maxBytes) return [];
    const mounted = await mountedPaths();
    const evicted: string[] = [];
    const remaining = new Set(records);
    for (const record of [...records].sort((a, b) => a.lastUse - b.lastUse)) {
      if (total <= this.maxBytes) break;
      if (this.inUse(record.rootfs, mounted)) continue;
      remaining.delete(record);
      await removeRootfs(record.rootfs);
      await fs.rm(record.file, { force: true });
      total -= record.bytes;
      const stillNeeded = new Set([...remaining].flatMap((r) => r.blobs));
      for (const digest of record.blobs) {
        if (stillNeeded.has(digest) || !blobSizes.has(digest) || await this.recentlyUsedBlob(digest)) continue;
        await fs.rm(this.blobs.pathOf(digest), { force: true });
        total -= blobSizes.get(digest) ?? 0;
        blobSizes.delete(digest);
      }
      evicted.push(record.rootfs);
    }
    return evicted;
  }

  /** A pull in progress (not recorded yet) may be about to unpack a blob it just ensured. */
  private async recentlyUsedBlob(digest: string): Promise<boolean> {
    const st = await fs.stat(this.blobs.pathOf(digest)).catch(() => undefined);
    return st !== undefined && Date.now() - st.mtimeMs < HANDED_OUT_GRACE_MS;
  }

  private inUse(rootfs: string, mounted: string): boolean {
    const handed = this.handedOut.get(rootfs);
    if (handed !== undefined && Date.now() - handed < HANDED_OUT_GRACE_MS) return true;
    return mounted.includes(rootfs);
  }

  private async records(): Promise<(UsageRecord & { file: string; lastUse: number })[]> {
    const dir = path.join(this.imagesDir, 'usage');
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    const out: (UsageRecord & { file: string; lastUse: number })[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const file = path.join(dir, name);
      try {
        const [text, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
        const record = JSON.parse(text) as UsageRecord;
        out.push({ ...record, file, lastUse: st.mtimeMs });
      } catch {
        // A record being written right now; the next eviction sees it.
      }
    }
    return out;
  }
}

/** Renames first, so a half-deleted rootfs never looks like a cached one. */
async function removeRootfs(rootfs: string): Promise<void> {
  const doomed = `${path.dirname(rootfs)}/.tmp-evict-${path.basename(rootfs)}-${randomBytes(4).toString('hex')}`;
  await fs.rename(rootfs, doomed).catch(() => {});
  await fs.rm(doomed, { recursive: true, force: true });
}

/** Every mount table of every mount namespace on the host, concatenated (for substring checks). */
async function mountedPaths(): Promise<string> {
  const seen = new Set<string>();
  const tables: string[] = [];
  const pids = await fs.readdir('/proc').catch(() => [] as string[]);
  for (const pid of ['self', ...pids.filter((p) => /^\d+$/.test(p))]) {
    const ns = await fs.readlink(`/proc/${pid}/ns/mnt`).catch(() => undefined);
    if (!ns || seen.has(ns)) continue;
    seen.add(ns);
    tables.push(await fs.readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => ''));
  }
  return tables.join('\n');
}
