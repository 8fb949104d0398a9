/**
 * Budgets for what an image may make the executor download, keep in memory and write to disk. A
 * registry and the layers it serves are untrusted: without bounds, a small gzip stream can expand
 * to fill the disk and a tar header can claim a multi-gigabyte long name that is read into memory.
 */
export const MIB = 2 ** 20;
export const GIB = 2 ** 30;

/** A manifest or index document. */
export const MAX_MANIFEST_BYTES = 4 * MIB;
/** The image config blob (it is parsed as JSON in memory). */
export const MAX_CONFIG_BYTES = 4 * MIB;
/** A token service's answer. */
export const MAX_TOKEN_RESPONSE_BYTES = MIB;
/** One PAX extended header or GNU long-name/long-link record. */
export const MAX_TAR_HEADER_RECORD_BYTES = MIB;

export const DEFAULT_IMAGE_MAX_BYTES = 10 * GIB;
export const DEFAULT_IMAGE_CACHE_BYTES = 20 * GIB;
export const DEFAULT_IMAGE_MAX_ENTRIES = 1_000_000;

export interface ImageLimits {
  /** EXECUTOR_IMAGE_MAX_SIZE: bounds each layer blob, all blobs together, and the unpacked image. */
  maxImageBytes: number;
  /** Tar entries of all layers together. */
  maxEntries: number;
}

export class ImageLimitError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'ImageLimitError';
  }
}

/** What is left of an image's unpacking budget; shared by all its layers. */
export class UnpackBudget {
  private bytesLeft: number;
  private entriesLeft: number;
  bytesSpent = 0;

  constructor(private readonly limits: ImageLimits) {
    this.bytesLeft = limits.maxImageBytes;
    this.entriesLeft = limits.maxEntries;
  }

  /** Counts uncompressed layer bytes (tar headers included) as they stream. */
  spendBytes(n: number): void {
    this.bytesLeft -= n;
    this.bytesSpent += n;
    if (this.bytesLeft < 0) throw new ImageLimitError(`the unpacked image is larger than the ${formatSize(this.limits.maxImageBytes)} limit (EXECUTOR_IMAGE_MAX_SIZE)`);
  }

  spendEntry(): void {
    if (--this.entriesLeft < 0) throw new ImageLimitError(`the image has more than ${this.limits.maxEntries} files`);
  }
}

export function formatSize(bytes: number): string {
  const units: [number, string][] = [[2 ** 40, 'TiB'], [GIB, 'GiB'], [MIB, 'MiB'], [2 ** 10, 'KiB']];
  for (const [size, unit] of units) if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  return `${bytes} bytes`;
}
