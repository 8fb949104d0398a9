/**
 * Text helpers for log output on its way to the coordinator: what PostgreSQL cannot store is made
 * visible, and cuts never split a UTF-16 surrogate pair (which would turn one character into two
 * U+FFFD replacement characters).
 */

/**
 * What a NUL byte in a step's output is shown as: U+2400 SYMBOL FOR NULL ("␀"). PostgreSQL text
 * cannot hold NUL, so sending it would lose the whole chunk. Invalid UTF-8 needs no such care: the
 * decoder already turns it into U+FFFD.
 */
export const NUL_REPLACEMENT = '\u2400';

export function escapeNul(text: string): string {
  return text.includes('\0') ? text.replaceAll('\0', NUL_REPLACEMENT) : text;
}

export function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}


/** `index`, or one less when cutting there would separate a surrogate pair. */
export function safeCutIndex(text: string, index: number): number {
  if (index <= 0 || index >= text.length) return Math.max(0, Math.min(index, text.length));
  return isHighSurrogate(text.charCodeAt(index - 1)) && index > 1 ? index - 1 : index;
}

/** Bytes `text` takes as a JSON string value in a UTF-8 request body (quotes included). */
export function jsonUtf8Length(text: string): number {
  return Buffer.byteLength(JSON.stringify(text));
}

/**
 * How many characters from the start of `text` fit in `maxBytes` once JSON-encoded as UTF-8 (the
 * quotes included). At least one character (or a whole surrogate pair) so that every call makes progress.
 */
export function chunkLength(text: string, maxBytes: number): number {
  if (text.length === 0) return 0;
  const minimum = Math.min(text.length, isHighSurrogate(text.charCodeAt(0)) ? 2 : 1);
  // A character never encodes to less than a byte, so the first guess is an upper bound; each next
  // guess scales it by how much it overshot (measuring natively beats a loop over characters).
  let length = safeCutIndex(text, Math.min(text.length, maxBytes));
  for (;;) {
    const bytes = jsonUtf8Length(text.slice(0, length));
    if (bytes <= maxBytes) return Math.max(length, minimum);
    const guess = safeCutIndex(text, Math.min(length - 1, Math.floor((length * maxBytes) / bytes)));
    if (guess < minimum) return minimum;
    length = guess;
  }
}

/**
 * The longest start of `text` whose UTF-8 encoding fits in `maxBytes`, preferring to end after a
 * newline so that a truncated log ends with a whole line.
 */
export function utf8Prefix(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let cut = maxBytes;
  // Back off to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  const lastNewline = bytes.lastIndexOf(0x0a, cut - 1);
  if (lastNewline >= 0) cut = lastNewline + 1;
  return bytes.subarray(0, cut).toString('utf8');
}
