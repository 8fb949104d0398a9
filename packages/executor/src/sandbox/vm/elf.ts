import { SandfleetError } from '@sandfleet/protocol';

/**
 * What a dynamically linked x86-64 program needs to load, read from its ELF headers (never by
 * running it or the host's loader): the interpreter (`PT_INTERP`) and the sonames of its
 * `DT_NEEDED` entries. The guest image uses it to copy a Debian binary with exactly its libraries.
 */
export class ElfError extends SandfleetError {}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;

export interface DynamicLinking {
  interpreter: string | undefined;
  needed: string[];
}

interface Segment {
  type: number;
  offset: number;
  vaddr: bigint;
  fileSize: number;
}

function segments(elf: Buffer): Segment[] {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) throw new ElfError('not an ELF file');
  if (elf[4] !== 2 || elf[5] !== 1) throw new ElfError('not a 64-bit little-endian ELF file');
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  if (phentsize < 56 || phoff + phentsize * phnum > elf.length) throw new ElfError('program headers run past the end of the file');
  return Array.from({ length: phnum }, (_, i) => {
    const at = phoff + i * phentsize;
    return { type: elf.readUInt32LE(at), offset: Number(elf.readBigUInt64LE(at + 8)), vaddr: elf.readBigUInt64LE(at + 16), fileSize: Number(elf.readBigUInt64LE(at + 32)) };
  });
}

function cString(elf: Buffer, at: number): string {
  const end = elf.indexOf(0, at);
  if (at >= elf.length || end < 0) throw new ElfError('string runs past the end of the file');
  return elf.toString('latin1', at, end);
}

/** A virtual address's place in the file, through the PT_LOAD segment that maps it. */
function fileOffset(loads: Segment[], vaddr: bigint): number {
  const seg = loads.find((s) => vaddr >= s.vaddr && vaddr < s.vaddr + BigInt(s.fileSize));
  if (!seg) throw new ElfError(`address 0x${vaddr.toString(16)} is in no loaded segment`);
  return seg.offset + Number(vaddr - seg.vaddr);
}

export function dynamicLinking(elf: Buffer): DynamicLinking {
  const all = segments(elf);
  const interp = all.find((s) => s.type === PT_INTERP);
  const dynamic = all.find((s) => s.type === PT_DYNAMIC);
  const interpreter = interp ? cString(elf, interp.offset) : undefined;
  if (!dynamic) return { interpreter, needed: [] };
  if (dynamic.offset + dynamic.fileSize > elf.length) throw new ElfError('the dynamic section runs past the end of the file');
  const entries: { tag: bigint; value: bigint }[] = [];
  for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.fileSize; at += 16) {
    const tag = elf.readBigInt64LE(at);
    if (tag === DT_NULL) break;
    entries.push({ tag, value: elf.readBigUInt64LE(at + 8) });
  }
  const strtab = entries.find((e) => e.tag === DT_STRTAB);
  const needed = entries.filter((e) => e.tag === DT_NEEDED);
  if (needed.length && !strtab) throw new ElfError('DT_NEEDED entries without a string table');
  const base = strtab ? fileOffset(all.filter((s) => s.type === PT_LOAD), strtab.value) : 0;
  return { interpreter, needed: needed.map((e) => cString(elf, base + Number(e.value))) };
}
