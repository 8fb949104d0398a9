import { spawnSync } from 'node:child_process';
import zlib from 'node:zlib';
import { SandfleetError } from '@sandfleet/protocol';
import { SYSTEM_PATH } from '../shared/host.js';
import { decodeLz4Legacy, LZ4_LEGACY_MAGIC } from './lz4.js';

export class KernelImageError extends SandfleetError {}

/** The compressions a bzImage payload may use that we can undo (Debian's cloud kernel uses LZ4, the generic one XZ). */
export type PayloadCompression = 'lz4' | 'gzip' | 'xz' | 'zstd';

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/** Where the compressed kernel sits in a bzImage, from its setup header (boot protocol 2.08+). */
export function locatePayload(bzImage: Buffer): { offset: number; length: number } {
  if (bzImage.length < 0x250 || bzImage.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new KernelImageError('not a bzImage (no HdrS setup header)');
  const protocol = bzImage.readUInt16LE(0x206);
  if (protocol < 0x208) throw new KernelImageError(`boot protocol ${protocol.toString(16)} has no payload fields (need 2.08+)`);
  const setupSectors = bzImage[0x1f1] || 4;
  const offset = (setupSectors + 1) * 512 + bzImage.readUInt32LE(0x248);
  const length = bzImage.readUInt32LE(0x24c);
  if (offset + length > bzImage.length) throw new KernelImageError('payload runs past the end of the bzImage');
  return { offset, length };
}

export function detectCompression(payload: Buffer): PayloadCompression {
  if (payload.length >= 4 && payload.readUInt32LE(0) === LZ4_LEGACY_MAGIC) return 'lz4';
  if (payload[0] === 0x1f && payload[1] === 0x8b) return 'gzip';
  if (payload.subarray(0, 6).equals(Buffer.from('fd377a585a00', 'hex'))) return 'xz';
  if (payload.length >= 4 && payload.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  throw new KernelImageError(`unsupported kernel compression (payload starts ${payload.subarray(0, 6).toString('hex')})`);
}

/** Runs a decompressor that reads stdin; xz and zstd have no decoder in Node 20. */
function decompressWith(argv: string[], input: Buffer): Buffer {
  const r = spawnSync(argv[0]!, argv.slice(1), { input, maxBuffer: 1 << 30, env: { PATH: SYSTEM_PATH } });
  if (r.error) throw new KernelImageError(`${argv[0]}: ${r.error.message} (install xz-utils or zstd)`);
  if (r.status !== 0) throw new KernelImageError(`${argv[0]} exited ${r.status}: ${r.stderr.toString().trim()}`);
  return r.stdout;
}

/**
 * The uncompressed ELF `vmlinux` inside a bzImage, for PVH boot (QEMU microvm) and Firecracker,
 * as the kernel's scripts/extract-vmlinux does, but reading the payload's place from the header
 * rather than scanning for magic bytes.
 */
export function extractVmlinux(bzImage: Buffer): Buffer {
  const { offset, length } = locatePayload(bzImage);
  const payload = bzImage.subarray(offset, offset + length);
  const compression = detectCompression(payload);
  const vmlinux =
    compression === 'lz4' ? decodeLz4Legacy(payload)
    : compression === 'gzip' ? zlib.gunzipSync(payload)
    : compression === 'xz' ? decompressWith(['xz', '-dc', '--single-stream'], payload)
    : decompressWith(['zstd', '-dc'], payload);
  if (!vmlinux.subarray(0, 4).equals(ELF_MAGIC)) throw new KernelImageError(`the ${compression} payload is not an ELF image`);
  // The build appends the uncompressed size after the payload's compressed bytes.
  const expected = payload.readUInt32LE(payload.length - 4);
  if (expected !== vmlinux.length) throw new KernelImageError(`vmlinux is ${vmlinux.length} bytes, the payload says ${expected}`);
  return vmlinux;
}
