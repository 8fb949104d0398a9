/**
 * A minimal streaming tar reader (ustar, pax and GNU long names), enough for OCI layers. It yields
 * headers; the caller must consume each entry's data with `readData`/`skipData` before asking for
 * the next header.
 */
export interface TarEntry {
  path: string;
  /** '0' file, '1' hard link, '2' symlink, '3'/'4' devices, '5' directory, '6' fifo. */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkPath: string;
}

const BLOCK = 512;

export class TarFormatError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'TarFormatError';
  }
}

export class ByteReader {
  private buffered: Buffer[] = [];
  private length = 0;
  private done = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Reads up to `max` bytes (at least one unless the stream ended). */
  async readSome(max: number): Promise<Buffer | null> {
    if (this.length === 0 && !(await this.fill(1))) return null;
    const first = this.buffered[0]!;
    if (first.length <= max) {
      this.buffered.shift();
      this.length -= first.length;
      return first;
    }
    this.buffered[0] = first.subarray(max);
    this.length -= max;
    return first.subarray(0, max);
  }

  /** Reads exactly `n` bytes, or null at a clean end of stream. */
  async readExactly(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.length === 0) return null;
      throw new Error(`unexpected end of tar stream (wanted ${n} bytes, have ${this.length})`);
    }
    const first = this.buffered[0]!;
    if (first.length >= n) {
      // The common case: no copy of everything buffered for each 512-byte header.
      const out = first.subarray(0, n);
      if (first.length === n) this.buffered.shift();
      else this.buffered[0] = first.subarray(n);
      this.length -= n;
      return out;
    }
    const all = Buffer.concat(this.buffered, this.length);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  private async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length) {
        this.buffered.push(next.value);
        this.length += next.value.length;
      }
    }
    return this.length >= n;
  }
}

function field(block: Buffer, start: number, len: number): string {
  const raw = block.subarray(start, start + len);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul === -1 ? len : nul).toString('utf8');
}

function numeric(block: Buffer, start: number, len: number): number {
  const raw = block.subarray(start, start + len);
  if ((raw[0] ?? 0) & 0x80) {
    // GNU base-256 encoding for values that do not fit in octal.
    let value = (raw[0] ?? 0) & 0x7f;
    for (let i = 1; i < raw.length; i++) value = value * 256 + (raw[i] ?? 0);
    return value;
  }
  const text = field(block, start, len).trim();
  return text ? parseInt(text, 8) : 0;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** PAX numbers are plain decimal; anything else (`1e3`, `-1`, `0x10`) is NaN, which callers refuse. */
function paxInteger(text: string): number {
  return /^\d{1,16}$/.test(text) ? Number(text) : NaN;
}

export class TarReader {
  private remaining = 0;
  private padding = 0;

  /** `maxRecordBytes` bounds a PAX header or GNU long name/link, which is read into memory. */
  constructor(private readonly bytes: ByteReader, private readonly maxRecordBytes = 1 << 20) {}

  async next(): Promise<TarEntry | null> {
    await this.skipData();
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    let recordBytes = 0;
    for (;;) {
      const block = await this.bytes.readExactly(BLOCK);
      if (!block || block.every((b) => b === 0)) return null;
      const type = String.fromCharCode(block[156] ?? 0x30).replace('\0', '0');
      const size = numeric(block, 124, 12);
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        recordBytes += size;
        if (!Number.isSafeInteger(size) || recordBytes > this.maxRecordBytes) {
          throw new TarFormatError(`tar ${type === 'L' || type === 'K' ? 'long name' : 'PAX header'} record of ${size} bytes is larger than the ${this.maxRecordBytes}-byte limit`);
        }
        const data = await this.readAll(size);
        if (type === 'x') pax = { ...pax, ...parsePax(data) };
        else if (type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
        else if (type === 'K') longLink = data.toString('utf8').replace(/\0+$/, '');
        continue;
      }
      const magic = block.subarray(257, 263).toString('latin1');
      let name = field(block, 0, 100);
      const prefix = magic === 'ustar\0' ? field(block, 345, 155) : '';
      if (prefix) name = `${prefix}/${name}`;
      const entry: TarEntry = {
        path: pax.path ?? longName ?? name,
        type,
        mode: numeric(block, 100, 8),
        uid: pax.uid !== undefined ? paxInteger(pax.uid) : numeric(block, 108, 8),
        gid: pax.gid !== undefined ? paxInteger(pax.gid) : numeric(block, 116, 8),
        size: pax.size !== undefined ? paxInteger(pax.size) : size,
        mtime: pax.mtime !== undefined ? Number(pax.mtime) : numeric(block, 136, 12),
        linkPath: pax.linkpath ?? longLink ?? field(block, 157, 100),
      };
      if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new TarFormatError(`tar entry ${JSON.stringify(entry.path.slice(0, 200))} has an invalid size`);
      // Links and directories carry no data even when a size is (wrongly) set.
      const dataSize = type === '0' || type === '7' ? entry.size : 0;
      this.remaining = dataSize;
      this.padding = (BLOCK - (dataSize % BLOCK)) % BLOCK;
      return entry;
    }
  }

  /** Streams the current entry's data to `sink`, chunk by chunk. */
  async readData(sink: (chunk: Buffer) => void): Promise<void> {
    while (this.remaining > 0) {
      const chunk = await this.bytes.readSome(Math.min(this.remaining, 1 << 20));
      if (!chunk) throw new Error('unexpected end of tar stream inside an entry');
      this.remaining -= chunk.length;
      sink(chunk);
    }
    await this.skipPadding();
  }

  async skipData(): Promise<void> {
    await this.readData(() => {});
  }

  private async skipPadding(): Promise<void> {
    if (this.padding > 0) {
      await this.bytes.readExactly(this.padding);
      this.padding = 0;
    }
  }

  private async readAll(size: number): Promise<Buffer> {
    const data = size ? await this.bytes.readExactly(size) : Buffer.alloc(0);
    if (!data && size) throw new Error('unexpected end of tar stream');
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await this.bytes.readExactly(pad);
    return data ?? Buffer.alloc(0);
  }
}
