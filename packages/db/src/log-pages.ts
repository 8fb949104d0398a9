import { sql, type Kysely } from 'kysely';
import type { ExecutionLogEntry } from '@sandfleet/protocol';
import type { EntryRow } from './logs.js';
import type { Schema } from './schema.js';

/**
 * A job's log read a page at a time, for the web UI's job page: each entry's output from a byte
 * offset, at most a given number of bytes, so a page never holds a whole multi-MiB log. Sizes and
 * positions come from octet_length and window sums (no chunk text is read for them); only the
 * chunks overlapping the requested range are sliced, in SQL, and sent. Offsets are UTF-8 byte
 * offsets into the entry's output; a page always ends on a character boundary, so the offset it
 * returns is a valid start for the next one.
 */

type Db = Kysely<Schema>;

/** One entry's metadata (no `out`) with a page of its output. */
export interface LogEntryPage {
  attempt: number;
  idx: number;
  entry: ExecutionLogEntry;
  /** The output from `offset`, cut on a character boundary. */
  out: string;
  /** Where the next page starts. */
  nextOffset: number;
  /** The entry's whole output size, in bytes. */
  totalBytes: number;
}

export interface LogPageStart {
  /** Every entry of every attempt, in (attempt, idx) order, each with the start of its output. */
  entries: LogEntryPage[];
  /** The log cursor of the same snapshot: a follower resuming after it misses nothing and repeats nothing. */
  cursor: number;
}

interface PageRow extends EntryRow {
  total: string | number;
  out: Uint8Array | null;
  cursor: string | number | null;
}

/**
 * The first `maxBytes` of each entry's output, and the cursor, from one statement (one snapshot).
 */
export async function readLogPageStart(db: Db, jobId: number, maxBytes: number): Promise<LogPageStart> {
  const rows = await readPages(db, jobId, undefined, 0, maxBytes);
  return { entries: rows.map((row) => toPage(row, 0)), cursor: Number(rows[0]?.cursor ?? 0) };
}

/** At most `maxBytes` of one entry's output from `offset`; undefined when there is no such entry. */
export async function readLogEntryPage(
  db: Db,
  jobId: number,
  entry: { attempt: number; idx: number },
  offset: number,
  maxBytes: number,
): Promise<LogEntryPage | undefined> {
  const rows = await readPages(db, jobId, entry, offset, maxBytes);
  return rows[0] ? toPage(rows[0], offset) : undefined;
}

async function readPages(db: Db, jobId: number, only: { attempt: number; idx: number } | undefined, offset: number, maxBytes: number): Promise<PageRow[]> {
  const attempt = only?.attempt ?? null;
  const idx = only?.idx ?? null;
  const end = offset + maxBytes;
  const { rows } = await sql<PageRow>`
    WITH sized AS (
      SELECT attempt, entry_idx, seq, out, octet_length(out) AS bytes,
        sum(octet_length(out)) OVER (PARTITION BY attempt, entry_idx ORDER BY seq) - octet_length(out) AS before
      FROM execution_log_chunks
      WHERE job_id = ${jobId}
        AND (${attempt}::integer IS NULL OR (attempt = ${attempt}::integer AND entry_idx = ${idx}::integer))
    ),
    totals AS (SELECT attempt, entry_idx, sum(bytes) AS total FROM sized GROUP BY attempt, entry_idx),
    slices AS (
      SELECT attempt, entry_idx,
        string_agg(
          substring(convert_to(out, 'UTF8') FROM (greatest(${offset}::bigint - before, 0) + 1)::integer FOR (${end}::bigint - greatest(before, ${offset}::bigint))::integer),
          ''::bytea ORDER BY seq) AS out
      FROM sized
      WHERE before < ${end}::bigint AND before + bytes > ${offset}::bigint
      GROUP BY attempt, entry_idx
    )
    SELECT e.attempt, e.idx, e.key, e.command, e.start_time, e.exit_code, e.duration_ms,
      coalesce(t.total, 0) AS total, s.out,
      greatest(
        (SELECT max(id) FROM execution_log_chunks WHERE job_id = ${jobId}),
        (SELECT max(change_id) FROM execution_log_entries WHERE job_id = ${jobId})) AS cursor
    FROM execution_log_entries e
    LEFT JOIN totals t ON t.attempt = e.attempt AND t.entry_idx = e.idx
    LEFT JOIN slices s ON s.attempt = e.attempt AND s.entry_idx = e.idx
    WHERE e.job_id = ${jobId}
      AND (${attempt}::integer IS NULL OR (e.attempt = ${attempt}::integer AND e.idx = ${idx}::integer))
    ORDER BY e.attempt, e.idx
  `.execute(db);
  return rows;
}

function toPage(row: PageRow, offset: number): LogEntryPage {
  const entry: ExecutionLogEntry = { key: row.key, command: row.command, startTime: row.start_time };
  if (row.exit_code !== null) entry.exitCode = row.exit_code;
  if (row.duration_ms !== null) entry.durationMs = row.duration_ms;
  const bytes = Buffer.from(row.out ?? new Uint8Array());
  const { start, end } = utf8Bounds(bytes);
  return {
    attempt: row.attempt,
    idx: row.idx,
    entry,
    out: bytes.subarray(start, end).toString('utf8'),
    nextOffset: offset + end,
    totalBytes: Number(row.total),
  };
}

/**
 * The whole characters in a slice of UTF-8: skips continuation bytes at the start (an offset a
 * client made up) and drops a character cut at the end.
 */
export function utf8Bounds(bytes: Uint8Array): { start: number; end: number } {
  let start = 0;
  while (start < bytes.length && start < 3 && (bytes[start]! & 0xc0) === 0x80) start++;
  let end = bytes.length;
  let lead = end - 1;
  while (lead >= start && lead > end - 4 && (bytes[lead]! & 0xc0) === 0x80) lead--;
  if (lead >= start) {
    const b = bytes[lead]!;
    const width = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    if (lead + width > end) end = lead;
  }
  return { start, end };
}
