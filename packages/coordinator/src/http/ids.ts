import { z } from 'zod';

/** The range of PostgreSQL `integer` columns (entry indexes, exit codes, chunk numbers). */
export const INT32_MIN = -2_147_483_648;
export const INT32_MAX = 2_147_483_647;

export const Int32 = z.number().int().min(INT32_MIN).max(INT32_MAX);

/** A row id (bigint columns), limited to what a JS number holds exactly. */
export const RowId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

const DECIMAL_ID = /^[1-9][0-9]*$/;

/**
 * A row id written as text (a path segment, a header, a query parameter): decimal digits only, no
 * sign, no leading zero, no hex or exponent, within RowId's range. Undefined otherwise.
 */
export function parseRowId(text: string | undefined): number | undefined {
  if (text === undefined || !DECIMAL_ID.test(text)) return undefined;
  const id = Number(text);
  return Number.isSafeInteger(id) ? id : undefined;
}

/** RowId as text, for zod-checked path and query parameters. */
export const RowIdText = z.string().transform((text, ctx) => {
  const id = parseRowId(text);
  if (id === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a decimal id from 1 to ${Number.MAX_SAFE_INTEGER}` });
    return z.NEVER;
  }
  return id;
});

/** A log cursor as text (Last-Event-ID): 0 or a RowId. */
export function parseCursor(text: string): number | undefined {
  return text === '0' ? 0 : parseRowId(text);
}
