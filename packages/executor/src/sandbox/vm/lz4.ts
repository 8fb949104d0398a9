import { SandfleetError } from '@sandfleet/protocol';

/** LZ4's legacy frame (what the kernel's `lz4 -l` build step writes): magic, then sized blocks. */
export const LZ4_LEGACY_MAGIC = 0x184c2102;
const LEGACY_BLOCK_BYTES = 8 << 20;

export class Lz4Error extends SandfleetError {}

/**
 * Decodes an LZ4 legacy frame. Stops at the end of `input` or at a block size too large to be one
 * (the kernel appends the uncompressed length after the last block). Every read and back-reference
 * is bounds-checked: the input is a package from a mirror, not trusted memory.
 */
export function decodeLz4Legacy(input: Buffer): Buffer {
  if (input.length < 4 || input.readUInt32LE(0) !== LZ4_LEGACY_MAGIC) throw new Lz4Error('not an LZ4 legacy frame');
  const blocks: Buffer[] = [];
  let at = 4;
  while (at + 4 <= input.length) {
    const size = input.readUInt32LE(at);
    if (size === LZ4_LEGACY_MAGIC) { at += 4; continue; }
    if (size === 0 || size > LEGACY_BLOCK_BYTES + (LEGACY_BLOCK_BYTES >> 8) + 16 || at + 4 + size > input.length) break;
    blocks.push(decodeLz4Block(input.subarray(at + 4, at + 4 + size), LEGACY_BLOCK_BYTES));
    at += 4 + size;
  }
  if (blocks.length === 0) throw new Lz4Error('LZ4 legacy frame holds no block');
  return Buffer.concat(blocks);
}

/** One LZ4 block (sequences of literals and matches) into at most `maxOutput` bytes. */
export function decodeLz4Block(block: Buffer, maxOutput: number): Buffer {
  const out = Buffer.allocUnsafe(maxOutput);
  let ip = 0;
  let op = 0;
  const readLength = (base: number): number => {
    let length = base;
    if (base !== 15) return length;
    for (;;) {
      if (ip >= block.length) throw new Lz4Error('truncated LZ4 length');
      const b = block[ip++]!;
      length += b;
      if (b !== 255) return length;
    }
  };
  while (ip < block.length) {
    const token = block[ip++]!;
    const literals = readLength(token >> 4);
    if (ip + literals > block.length || op + literals > maxOutput) throw new Lz4Error('LZ4 literals out of bounds');
    block.copy(out, op, ip, ip + literals);
    ip += literals;
    op += literals;
    if (ip >= block.length) break; // the last sequence has literals only
    if (ip + 2 > block.length) throw new Lz4Error('truncated LZ4 offset');
    const offset = block.readUInt16LE(ip);
    ip += 2;
    const matchLength = readLength(token & 15) + 4;
    if (offset === 0 || offset > op || op + matchLength > maxOutput) throw new Lz4Error('LZ4 match out of bounds');
    // Byte by byte: a match may overlap the bytes it is copying (offset < length repeats them).
    for (let i = 0; i < matchLength; i++, op++) out[op] = out[op - offset]!;
  }
  return out.subarray(0, op);
}
