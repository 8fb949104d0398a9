import { sql, type RawBuilder } from 'kysely';

/**
 * A bigint[] parameter written as an array literal: pg and PGlite serialise JS arrays differently,
 * text is understood by both. Throws on anything but safe integers, so nothing can be injected.
 */
export function bigintArray(values: readonly number[]): RawBuilder<number[]> {
  for (const v of values) if (!Number.isSafeInteger(v)) throw new TypeError(`not an integer id: ${v}`);
  return sql<number[]>`${`{${values.join(',')}}`}::bigint[]`;
}

/** A text[] parameter, passed as JSON so any string (commas, quotes, braces) survives. */
export function textArray(values: readonly string[]): RawBuilder<string[]> {
  return sql<string[]>`ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`;
}

/** A duration in milliseconds as an interval expression. */
export function msInterval(ms: number): RawBuilder<unknown> {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`not a duration in ms: ${ms}`);
  return sql`(${Math.round(ms)}::bigint * interval '1 millisecond')`;
}
