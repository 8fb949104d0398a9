/**
 * What a NUL character in text from a client is stored as: U+2400 SYMBOL FOR NULL ("␀"), the
 * executor's convention for its own output. PostgreSQL text and jsonb cannot hold NUL; a write
 * holding one would fail whole.
 */
export const NUL_REPLACEMENT = '\u2400';

/**
 * `text` as PostgreSQL can store it: NUL made visible, a lone UTF-16 surrogate (no character in
 * UTF-8) replaced by U+FFFD, as a UTF-8 encoder would.
 */
export function storableText(text: string): string {
  const noNul = text.includes('\0') ? text.replaceAll('\0', NUL_REPLACEMENT) : text;
  return noNul.replace(LONE_SURROGATE, '\uFFFD');
}

export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The largest value an `integer` column holds. */
const INT32_MAX = 2_147_483_647;

/** A duration in ms for an `integer` column: anything longer (24.8 days) is stored as the maximum. */
export function storableDurationMs(ms: number | null | undefined): number | null {
  if (ms === null || ms === undefined) return null;
  return Math.max(0, Math.min(Math.round(ms), INT32_MAX));
}
