import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';

/**
 * A job's log is stored up to a budget of bytes (all attempts together). The write that reaches it
 * keeps what fits and ends with TRUNCATION_MARKER; every later write's output is dropped (the
 * write itself still succeeds, so the executor carries on). "Full" is: stored bytes >= budget.
 */
export const TRUNCATION_MARKER = '\n[sandfleet: this job reached its log size limit; further output is not stored]\n';

/** Bytes of output stored for a job (octet_length reads no chunk's text). */
export async function storedLogBytes(db: Kysely<Schema>, jobId: number): Promise<number> {
  const { rows } = await sql<{ bytes: string | number }>`
    SELECT coalesce(sum(octet_length(out)), 0) AS bytes FROM execution_log_chunks WHERE job_id = ${jobId}
  `.execute(db);
  return Number(rows[0]?.bytes ?? 0);
}

/** What of `out` may be stored when `stored` bytes are: all of it, a start plus the marker, or nothing. */
export function fitLogOutput(out: string, stored: number, budget: number | undefined): string {
  if (budget === undefined || out === '') return out;
  if (stored >= budget) return '';
  const bytes = Buffer.byteLength(out);
  if (stored + bytes <= budget) return out;
  const room = budget - stored - Buffer.byteLength(TRUNCATION_MARKER);
  return utf8Prefix(out, Math.max(0, room)) + TRUNCATION_MARKER;
}

/** The longest start of `text` whose UTF-8 encoding fits in `maxBytes`, never cutting a character. */
function utf8Prefix(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back off continuation bytes (10xxxxxx) so the cut falls between characters.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
