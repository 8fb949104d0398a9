import type { EncodedLogOut } from '../apiclient/client.js';
import { chunkLength, jsonUtf8Length } from './log-text.js';

/**
 * One chunk of log output, held as the bytes it takes in the request body: the UTF-8 of a JSON
 * string's contents. Output is encoded into the chunk as it arrives, piece by piece, so a full chunk
 * is one buffer rather than the several large strings (concatenation, slice, JSON text of the chunk,
 * JSON text of the body) it used to be; those outlived young-generation collections while the
 * request was in flight and piled up as garbage until the next full collection. A chunk's buffer
 * leaves room on both sides for the rest of the request body, so the body is framed in place.
 */

/** Room before the text for the body's start (`{"executorName":…,"out":"`). */
const HEAD_ROOM = 512;
/** Room after the text for marker lines and the body's end. */
const TAIL_ROOM = 4096;

/** Characters JSON.stringify would escape (`"`, `\`, control characters, surrogates when unpaired). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** The JSON string contents of `text`, without quotes. */
function jsonContents(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text).slice(1, -1) : text;
}

export class JsonChunk implements EncodedLogOut {
  #buffer: Buffer;
  /** Where the next encoded byte goes. */
  #end = HEAD_ROOM;
  /** UTF-8 bytes of the text itself (as stored), for the marker lines' counts. */
  #textBytes = 0;
  /** UTF-16 length of the text, for the backpressure thresholds. */
  #chars = 0;

  /** `capacity`: the most the text may take encoded, quotes included, like chunkLength's `maxBytes`. */
  constructor(readonly capacity: number) {
    // Zeroed: only written bytes are ever sent, but no stale memory should sit next to them.
    this.#buffer = Buffer.alloc(HEAD_ROOM + Math.max(0, capacity - 2) + TAIL_ROOM);
  }

  get textBytes(): number {
    return this.#textBytes;
  }

  get chars(): number {
    return this.#chars;
  }

  get isEmpty(): boolean {
    return this.#chars === 0;
  }

  /** Bytes left for text within the capacity. */
  get #room(): number {
    return this.capacity - 2 - (this.#end - HEAD_ROOM);
  }

  /** Appends as much of `text` as fits in the capacity, never splitting a surrogate pair; returns the characters taken. */
  write(text: string): number {
    if (text === '') return 0;
    const encoded = jsonContents(text);
    const bytes = Buffer.byteLength(encoded);
    if (bytes <= this.#room) {
      this.#put(text, encoded, bytes);
      return text.length;
    }
    // Plain ASCII (the common flood) is cut by count, written in place: no slice, no JSON text of it.
    if (encoded === text && bytes === text.length) {
      const taken = this.#buffer.write(text, this.#end, Math.max(0, this.#room), 'latin1');
      this.#end += taken;
      this.#textBytes += taken;
      this.#chars += taken;
      return taken;
    }
    const length = chunkLength(text, this.#room + 2);
    // chunkLength takes at least one character, even one that does not fit.
    if (jsonUtf8Length(text.slice(0, length)) > this.#room + 2) return 0;
    return this.write(text.slice(0, length));
  }

  /** Appends `text` whatever the capacity (the marker lines of a final chunk). */
  writeUnbounded(text: string): void {
    if (text === '') return;
    const encoded = jsonContents(text);
    this.#put(text, encoded, Buffer.byteLength(encoded));
  }

  /** Empties the chunk for reuse; its buffer stays. */
  reset(): void {
    this.#end = HEAD_ROOM;
    this.#textBytes = 0;
    this.#chars = 0;
  }

  frame(head: Uint8Array, tail: Uint8Array): Uint8Array {
    const text = this.#buffer.subarray(HEAD_ROOM, this.#end);
    if (head.length > HEAD_ROOM || this.#end + tail.length > this.#buffer.length) return Buffer.concat([head, text, tail]);
    const start = HEAD_ROOM - head.length;
    this.#buffer.set(head, start);
    this.#buffer.set(tail, this.#end);
    return this.#buffer.subarray(start, this.#end + tail.length);
  }

  /** The text, decoded (for tests and debugging). */
  toString(): string {
    return JSON.parse(`"${this.#buffer.toString('utf8', HEAD_ROOM, this.#end)}"`) as string;
  }

  #put(text: string, encoded: string, bytes: number): void {
    if (this.#end + bytes + TAIL_ROOM > this.#buffer.length) this.#grow(this.#end + bytes + TAIL_ROOM);
    this.#buffer.write(encoded, this.#end, 'utf8');
    this.#end += bytes;
    this.#textBytes += encoded === text ? bytes : Buffer.byteLength(text);
    this.#chars += text.length;
  }

  #grow(size: number): void {
    const larger = Buffer.alloc(size);
    this.#buffer.copy(larger, 0, 0, this.#end);
    this.#buffer = larger;
  }
}
