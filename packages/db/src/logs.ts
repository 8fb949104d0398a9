import { sql, type Kysely, type Transaction } from 'kysely';
import type { ExecutionLogEntry } from '@sandfleet/protocol';
import { JOB_LOGS_CHANNEL, notifyCommitted } from './notify.js';
import type { Schema } from './schema.js';
import { storableDurationMs, storableText } from './stored-text.js';
import { fitLogOutput, storedLogBytes } from './log-budget.js';

/**
 * Execution logs, stored so that output is appended, never rewritten: an entry row holds the step's
 * metadata, its output is a list of chunk rows. Writes are accepted only from the executor and
 * attempt holding the job (processing, worker_hostname, attempt): the same fence as the final marks.
 *
 * Every write first locks the job row (FOR NO KEY UPDATE). That serialises the writes of one job, so
 * its chunk ids and entry change ids, drawn from one sequence, commit in increasing order and a
 * follower reading "everything after cursor N" never skips a row that commits late.
 *
 * Chunk `seq` 0 holds the `out` given to addLogEntry; appendLogChunk's `seq` s is stored as s + 1
 * (the wire numbers appended chunks from 0); updateLogEntry appends at max(seq) + 1.
 *
 * A metadata change written together with output (an exit code with the last chunk) draws its change
 * id after the chunk's: in cursor order a step's exit comes after the output it ended with.
 * Every write notifies JOB_LOGS_CHANNEL with the job id (delivered at commit).
 */

type Db = Kysely<Schema>;

/** The writer of a log: must hold the job in this attempt. */
export interface LogWriterRef {
  jobId: number;
  attempt: number;
  executorName: string;
}

/** Locks the job row if this writer holds it; false means the write must be refused. */
async function holdJob(trx: Transaction<Schema>, ref: LogWriterRef, entryIdx?: number): Promise<boolean> {
  const { rows } = await sql<{ id: number }>`
    SELECT j.id FROM jobs j
    WHERE j.id = ${ref.jobId}
      AND j.state = 'processing'
      AND j.worker_hostname = ${ref.executorName}
      AND j.attempt = ${ref.attempt}::integer
      AND (${entryIdx ?? null}::integer IS NULL OR EXISTS (
        SELECT 1 FROM execution_log_entries e
        WHERE e.job_id = j.id AND e.attempt = j.attempt AND e.idx = ${entryIdx ?? null}::integer))
    FOR NO KEY UPDATE OF j
  `.execute(trx);
  return rows.length === 1;
}

/** An entry as the tables can hold it: text made storable (stored-text.ts), the duration clamped. */
function storableEntry(entry: ExecutionLogEntry): ExecutionLogEntry {
  const stored: ExecutionLogEntry = {
    ...entry,
    key: storableText(entry.key),
    startTime: storableText(entry.startTime),
    command: entry.command?.map(storableText) ?? entry.command,
    durationMs: storableDurationMs(entry.durationMs),
  };
  if (entry.out !== undefined) stored.out = storableText(entry.out);
  return stored;
}

function commandJson(entry: ExecutionLogEntry): string {
  return JSON.stringify(entry.command ?? []);
}

export interface AddLogEntryInput extends LogWriterRef {
  entry: ExecutionLogEntry;
  /** The executor's key for this entry: a repeat with it returns the entry already made. */
  clientKey?: string | undefined;
  /** The job's log budget in bytes (log-budget.ts); unlimited when absent. */
  maxJobLogBytes?: number;
}

/**
 * Adds an entry to the attempt's log; its `out` (if any) becomes the entry's first chunk.
 * Returns the entry's 1-based index, or undefined when the writer no longer holds the job. With a
 * `clientKey` the attempt already has an entry for, that entry's index is returned and nothing is
 * written (the job row lock makes the check and the insert one step).
 */
export async function addLogEntry(db: Db, input: AddLogEntryInput): Promise<number | undefined> {
  const entry = storableEntry(input.entry);
  if (entry.out && input.maxJobLogBytes !== undefined) entry.out = fitLogOutput(entry.out, await storedLogBytes(db, input.jobId), input.maxJobLogBytes);
  let written = false;
  const result = await db.transaction().execute(async (trx) => {
    if (!(await holdJob(trx, input))) return undefined;
    if (input.clientKey !== undefined) {
      const existing = await sql<{ idx: number }>`
        SELECT idx FROM execution_log_entries
        WHERE job_id = ${input.jobId} AND attempt = ${input.attempt}::integer AND client_key = ${input.clientKey}
      `.execute(trx);
      if (existing.rows[0]) return existing.rows[0].idx;
    }
    const { rows } = await sql<{ idx: number }>`
      WITH added AS (
        INSERT INTO execution_log_entries (job_id, attempt, idx, key, command, start_time, exit_code, duration_ms, client_key)
        SELECT ${input.jobId}, ${input.attempt}::integer, coalesce(max(idx), 0) + 1, ${entry.key},
          ${commandJson(entry)}::jsonb, ${entry.startTime}, ${entry.exitCode ?? null}::integer, ${entry.durationMs ?? null}::integer,
          ${input.clientKey ?? null}::text
        FROM execution_log_entries
        WHERE job_id = ${input.jobId} AND attempt = ${input.attempt}::integer
        RETURNING idx
      ),
      first_chunk AS (
        INSERT INTO execution_log_chunks (job_id, attempt, entry_idx, seq, out)
        SELECT ${input.jobId}, ${input.attempt}::integer, idx, 0, ${entry.out ?? ''}
        FROM added WHERE ${entry.out ?? ''} <> ''
      )
      SELECT idx FROM added
    `.execute(trx);
    const idx = rows[0]!.idx;
    if ((entry.out ?? '') !== '' && (entry.exitCode != null || entry.durationMs != null)) {
      // A step logged already finished: its exit goes after its output.
      await sql`
        UPDATE execution_log_entries SET change_id = nextval('execution_log_cursor_seq')
        WHERE job_id = ${input.jobId} AND attempt = ${input.attempt}::integer AND idx = ${idx}::integer
      `.execute(trx);
    }
    written = true;
    return idx;
  });
  if (written) await notifyCommitted(db, JOB_LOGS_CHANNEL, String(input.jobId));
  return result;
}

export interface UpdateLogEntryInput extends LogWriterRef {
  /** The 1-based index addLogEntry returned. */
  entryId: number;
  entry: ExecutionLogEntry;
  maxJobLogBytes?: number;
}

/**
 * Sourcegraph's updateExecutionLogEntry: the client resends the whole entry (every second while a
 * step runs). Metadata is replaced (and only rewritten if it changed). Output: when the new `out`
 * starts with what is stored, only the new suffix is appended as a chunk; otherwise the entry's
 * chunks are replaced by one chunk marked `replaces`. An absent `out` leaves the output alone.
 * False when the writer no longer holds the job or the entry does not exist.
 */
export async function updateLogEntry(db: Db, input: UpdateLogEntryInput): Promise<boolean> {
  const { jobId, entryId } = input;
  const entry = storableEntry(input.entry);
  const attempt = input.attempt;
  let written = false;
  const result = await db.transaction().execute(async (trx) => {
    if (!(await holdJob(trx, input, entryId))) return false;
    if (entry.out !== undefined && input.maxJobLogBytes !== undefined) {
      // The entry's own output is resent whole: it counts against the rest of the job's log.
      const own = await sql<{ bytes: string | number }>`
        SELECT coalesce(sum(octet_length(out)), 0) AS bytes FROM execution_log_chunks
        WHERE job_id = ${jobId} AND attempt = ${attempt}::integer AND entry_idx = ${entryId}::integer
      `.execute(trx);
      const others = (await storedLogBytes(trx, jobId)) - Number(own.rows[0]?.bytes ?? 0);
      const ownBytes = Number(own.rows[0]?.bytes ?? 0);
      if (others + ownBytes >= input.maxJobLogBytes) entry.out = undefined;
      else entry.out = fitLogOutput(entry.out, others, input.maxJobLogBytes);
    }
    // Output first, then metadata: an exit code sent with the last output is delivered after it.
    if (entry.out !== undefined) {
      // The comparison runs in SQL: lengths there count characters, as substr does (JS counts UTF-16 units).
      await sql`
        WITH input AS (SELECT ${entry.out}::text AS out),
        stored AS (
          SELECT coalesce(string_agg(out, '' ORDER BY seq), '') AS out, coalesce(max(seq), 0) AS max_seq
          FROM execution_log_chunks
          WHERE job_id = ${jobId} AND attempt = ${attempt}::integer AND entry_idx = ${entryId}::integer
        ),
        plan AS (
          SELECT stored.max_seq, length(stored.out) AS stored_len, starts_with(input.out, stored.out) AS extends, input.out
          FROM stored, input
        ),
        removed AS (
          DELETE FROM execution_log_chunks
          WHERE job_id = ${jobId} AND attempt = ${attempt}::integer AND entry_idx = ${entryId}::integer
            AND NOT (SELECT extends FROM plan)
        )
        INSERT INTO execution_log_chunks (job_id, attempt, entry_idx, seq, out, replaces)
        SELECT ${jobId}, ${attempt}::integer, ${entryId}::integer, max_seq + 1,
          CASE WHEN extends THEN substr(out, stored_len + 1) ELSE out END, NOT extends
        FROM plan
        WHERE NOT extends OR length(out) > stored_len
      `.execute(trx);
    }
    await sql`
      UPDATE execution_log_entries SET
        key = ${entry.key},
        command = ${commandJson(entry)}::jsonb,
        start_time = ${entry.startTime},
        exit_code = ${entry.exitCode ?? null}::integer,
        duration_ms = ${entry.durationMs ?? null}::integer,
        change_id = nextval('execution_log_cursor_seq')
      WHERE job_id = ${jobId} AND attempt = ${attempt}::integer AND idx = ${entryId}::integer
        AND (key, command, start_time, exit_code, duration_ms) IS DISTINCT FROM
            (${entry.key}, ${commandJson(entry)}::jsonb, ${entry.startTime}, ${entry.exitCode ?? null}::integer, ${entry.durationMs ?? null}::integer)
    `.execute(trx);
    written = true;
    return true;
  });
  if (written) await notifyCommitted(db, JOB_LOGS_CHANNEL, String(jobId));
  return result;
}

export interface AppendLogChunkInput extends LogWriterRef {
  entryId: number;
  /** The chunk's number within the entry, from 0. A seq already stored is ignored (a retry). */
  seq: number;
  out: string;
  /** Set on the entry when given (the step's last chunk). */
  exitCode?: number | null;
  durationMs?: number | null;
  maxJobLogBytes?: number;
}

/**
 * Appends one chunk of output to an entry: one small row, whatever the entry's size. Idempotent
 * per seq. False when the writer no longer holds the job or the entry does not exist.
 */
export async function appendLogChunk(db: Db, input: AppendLogChunkInput): Promise<boolean> {
  const { jobId, entryId } = input;
  const attempt = input.attempt;
  const exitCode = input.exitCode ?? null;
  const durationMs = storableDurationMs(input.durationMs);
  const text = storableText(input.out);
  const out = input.maxJobLogBytes === undefined ? text : fitLogOutput(text, await storedLogBytes(db, jobId), input.maxJobLogBytes);
  // One statement: the chunk insert reads from `held`, so the job row is locked before the
  // insert draws its id from the cursor sequence.
  const { rows } = await sql<{ held: boolean }>`
    WITH held AS (
      SELECT j.id FROM jobs j
      JOIN execution_log_entries e ON e.job_id = j.id AND e.attempt = j.attempt AND e.idx = ${entryId}::integer
      WHERE j.id = ${jobId}
        AND j.state = 'processing'
        AND j.worker_hostname = ${input.executorName}
        AND j.attempt = ${attempt}::integer
      FOR NO KEY UPDATE OF j
    ),
    chunk AS (
      INSERT INTO execution_log_chunks (job_id, attempt, entry_idx, seq, out)
      SELECT id, ${attempt}::integer, ${entryId}::integer, ${input.seq + 1}::integer, ${out} FROM held
      ON CONFLICT (job_id, attempt, entry_idx, seq) DO NOTHING
      RETURNING id
    ),
    -- Reading the chunk's result first makes the change id come after the chunk id.
    meta AS (
      UPDATE execution_log_entries SET
        exit_code = coalesce(${exitCode}::integer, exit_code),
        duration_ms = coalesce(${durationMs}::integer, duration_ms),
        change_id = nextval('execution_log_cursor_seq')
      FROM (SELECT count(*) AS n FROM chunk) AS after_chunk
      WHERE job_id = ${jobId} AND attempt = ${attempt}::integer AND idx = ${entryId}::integer
        AND (${exitCode}::integer IS NOT NULL OR ${durationMs}::integer IS NOT NULL)
        AND EXISTS (SELECT 1 FROM held)
    )
    SELECT EXISTS (SELECT 1 FROM held) AS held
  `.execute(db);
  if (rows[0]?.held !== true) return false;
  await notifyCommitted(db, JOB_LOGS_CHANNEL, String(jobId));
  return true;
}

/** A log entry's row without its output, as the read statements select it. */
export interface EntryRow {
  attempt: number;
  idx: number;
  key: string;
  command: string[];
  start_time: string;
  exit_code: number | null;
  duration_ms: number | null;
}

function toEntry(row: EntryRow, out?: string): ExecutionLogEntry {
  const entry: ExecutionLogEntry = { key: row.key, command: row.command, startTime: row.start_time };
  if (row.exit_code !== null) entry.exitCode = row.exit_code;
  if (out !== undefined) entry.out = out;
  if (row.duration_ms !== null) entry.durationMs = row.duration_ms;
  return entry;
}

/**
 * The log of one attempt (default: the job's current attempt) in entry order, each `out`
 * assembled from its chunks. Empty for an unknown job.
 */
export async function getLogEntries(db: Db, jobId: number, options: { attempt?: number } = {}): Promise<ExecutionLogEntry[]> {
  const { rows } = await sql<EntryRow & { out: string }>`
    SELECT e.attempt, e.idx, e.key, e.command, e.start_time, e.exit_code, e.duration_ms,
      (SELECT coalesce(string_agg(c.out, '' ORDER BY c.seq), '') FROM execution_log_chunks c
        WHERE c.job_id = e.job_id AND c.attempt = e.attempt AND c.entry_idx = e.idx) AS out
    FROM execution_log_entries e
    WHERE e.job_id = ${jobId}
      AND e.attempt = coalesce(${options.attempt ?? null}::integer, (SELECT attempt FROM jobs WHERE id = ${jobId}))
    ORDER BY e.idx
  `.execute(db);
  return rows.map((row) => toEntry(row, row.out));
}

/** A piece of output, in cursor order. `replaces`: discard what the entry showed so far, then show `out`. */
export interface LogChunk {
  id: number;
  attempt: number;
  entryIdx: number;
  out: string;
  replaces: boolean;
}

/** An entry created or changed (exit code, duration, …) after the cursor; `entry.out` is absent. */
export interface LogEntryChange {
  changeId: number;
  attempt: number;
  idx: number;
  entry: ExecutionLogEntry;
}

export interface LogFollowBatch {
  chunks: LogChunk[];
  entries: LogEntryChange[];
  /** Pass this as afterChunkId next time (for SSE: the event id). Unchanged when nothing is new. */
  cursor: number;
}

/** How much output one follower read returns at most (beyond a single larger chunk). */
export const LOG_BATCH_BYTES = 1024 * 1024;

/**
 * Everything written to a job's logs after `afterChunkId` (0 = from the beginning), for a
 * Server-Sent-Events follower: chunks and entry changes of every attempt, each list in cursor order.
 * An entry is reported (with its current metadata) no later than the batch holding its first chunk,
 * and again whenever it changes; apply entries by (attempt, idx), then chunks. A follower shows the
 * highest attempt it has seen and starts over when a higher one appears. At most `limit` chunks
 * (default 1000) and about LOG_BATCH_BYTES of output per call; read again with the returned cursor for more. One statement, so chunks
 * and entries come from one snapshot.
 */
export async function readLogChunksSince(
  db: Db,
  jobId: number,
  afterChunkId: number,
  options: { limit?: number; maxBytes?: number } = {},
): Promise<LogFollowBatch> {
  const limit = options.limit ?? 1000;
  const maxBytes = options.maxBytes ?? LOG_BATCH_BYTES;
  const { rows } = await sql<{
    kind: 'chunk' | 'entry';
    cursor: number;
    attempt: number;
    idx: number;
    out: string | null;
    replaces: boolean | null;
    key: string | null;
    command: string[] | null;
    start_time: string | null;
    exit_code: number | null;
    duration_ms: number | null;
  }>`
    WITH fetched AS (
      SELECT id, attempt, entry_idx, out, replaces, octet_length(out) AS bytes FROM execution_log_chunks
      WHERE job_id = ${jobId} AND id > ${afterChunkId}
      ORDER BY id
      LIMIT ${limit}::integer
    ),
    -- At most maxBytes of output (and always the first chunk): octet_length reads no chunk's text.
    chunks AS (
      SELECT id, attempt, entry_idx, out, replaces, bytes FROM (
        SELECT *, sum(bytes) OVER (ORDER BY id) - bytes AS before FROM fetched
      ) sized
      WHERE before < ${maxBytes}::bigint
    ),
    -- When the chunk list is cut short, the cursor stops at its last chunk: later entry changes
    -- wait for the next call, except for entries whose chunks are in this batch.
    bound AS (
      SELECT CASE WHEN count(*) >= ${limit}::integer OR coalesce(sum(bytes), 0) >= ${maxBytes}::bigint THEN max(id) END AS upper FROM chunks
    )
    SELECT 'chunk' AS kind, id AS cursor, attempt, entry_idx AS idx, out, replaces,
      NULL::text AS key, NULL::jsonb AS command, NULL::text AS start_time, NULL::integer AS exit_code, NULL::integer AS duration_ms
    FROM chunks
    UNION ALL
    SELECT 'entry', e.change_id, e.attempt, e.idx, NULL, NULL, e.key, e.command, e.start_time, e.exit_code, e.duration_ms
    FROM execution_log_entries e, bound
    WHERE e.job_id = ${jobId}
      AND e.change_id > ${afterChunkId}
      AND (bound.upper IS NULL OR e.change_id <= bound.upper
           OR EXISTS (SELECT 1 FROM chunks c WHERE c.attempt = e.attempt AND c.entry_idx = e.idx))
    ORDER BY cursor
  `.execute(db);
  const batch: LogFollowBatch = { chunks: [], entries: [], cursor: afterChunkId };
  for (const row of rows) {
    if (row.kind === 'chunk') {
      batch.chunks.push({ id: row.cursor, attempt: row.attempt, entryIdx: row.idx, out: row.out ?? '', replaces: row.replaces === true });
    } else {
      const entry = toEntry({ ...row, key: row.key ?? '', command: row.command ?? [], start_time: row.start_time ?? '' });
      batch.entries.push({ changeId: row.cursor, attempt: row.attempt, idx: row.idx, entry });
    }
  }
  // The same test as `bound` in the statement.
  const bytes = batch.chunks.reduce((sum, c) => sum + Buffer.byteLength(c.out), 0);
  const truncated = batch.chunks.length >= limit || bytes >= maxBytes;
  const ids = [afterChunkId, ...batch.chunks.map((c) => c.id), ...(truncated ? [] : batch.entries.map((e) => e.changeId))];
  batch.cursor = Math.max(...ids);
  return batch;
}

/** An entry of a log preview: `out` is the start of the step's output, `outBytes` its whole size. */
export type LogPreviewEntry = ExecutionLogEntry & { idx: number; outBytes: number; outTruncated: boolean };

/**
 * The current attempt's log with each entry's output cut to about its first `maxBytes` (whole
 * chunks, then at most `maxBytes` characters): what a job view shows without loading a huge log.
 * Sizes come from octet_length, which reads no chunk's text.
 */
export async function getLogPreview(db: Db, jobId: number, maxBytes: number): Promise<LogPreviewEntry[]> {
  const { rows } = await sql<EntryRow & { out: string; out_bytes: string | number }>`
    WITH current AS (SELECT attempt FROM jobs WHERE id = ${jobId}),
    sized AS (
      SELECT c.entry_idx, c.seq, c.out, octet_length(c.out) AS bytes,
        sum(octet_length(c.out)) OVER (PARTITION BY c.entry_idx ORDER BY c.seq) - octet_length(c.out) AS before
      FROM execution_log_chunks c, current
      WHERE c.job_id = ${jobId} AND c.attempt = current.attempt
    ),
    outputs AS (
      SELECT entry_idx, left(string_agg(out, '' ORDER BY seq) FILTER (WHERE before < ${maxBytes}::bigint), ${maxBytes}::integer) AS out,
        sum(bytes) AS out_bytes
      FROM sized GROUP BY entry_idx
    )
    SELECT e.attempt, e.idx, e.key, e.command, e.start_time, e.exit_code, e.duration_ms,
      coalesce(o.out, '') AS out, coalesce(o.out_bytes, 0) AS out_bytes
    FROM execution_log_entries e JOIN current ON e.attempt = current.attempt
    LEFT JOIN outputs o ON o.entry_idx = e.idx
    WHERE e.job_id = ${jobId}
    ORDER BY e.idx
  `.execute(db);
  return rows.map((row) => {
    const outBytes = Number(row.out_bytes);
    return { ...toEntry(row, row.out), idx: row.idx, outBytes, outTruncated: Buffer.byteLength(row.out) < outBytes };
  });
}

/** A piece of a log read in order: a step starts (`entry`) or continues with output (`out`). */
export type LogTextPiece = { entry: ExecutionLogEntry & { idx: number } } | { out: string };

/**
 * The current attempt's log in entry order, read in batches of at most about `batchBytes` of
 * output (and 1000 chunks): never the whole log at once, whatever its size. Entry metadata comes
 * first for each step; the attempt is fixed at the first read.
 */
export async function* readLogText(db: Db, jobId: number, options: { batchBytes?: number } = {}): AsyncGenerator<LogTextPiece> {
  const batchBytes = options.batchBytes ?? LOG_BATCH_BYTES;
  const { rows: entries } = await sql<EntryRow>`
    SELECT e.attempt, e.idx, e.key, e.command, e.start_time, e.exit_code, e.duration_ms
    FROM execution_log_entries e
    WHERE e.job_id = ${jobId} AND e.attempt = (SELECT attempt FROM jobs WHERE id = ${jobId})
    ORDER BY e.idx
  `.execute(db);
  for (const row of entries) {
    yield { entry: { ...toEntry(row), idx: row.idx } };
    let afterSeq = -1;
    for (;;) {
      const { rows } = await sql<{ seq: number; out: string }>`
        SELECT seq, out FROM (
          SELECT seq, out, sum(octet_length(out)) OVER (ORDER BY seq) - octet_length(out) AS before
          FROM (
            SELECT seq, out FROM execution_log_chunks
            WHERE job_id = ${jobId} AND attempt = ${row.attempt}::integer AND entry_idx = ${row.idx}::integer AND seq > ${afterSeq}::integer
            ORDER BY seq LIMIT 1000
          ) page
        ) sized
        WHERE before < ${batchBytes}::bigint
        ORDER BY seq
      `.execute(db);
      if (rows.length === 0) break;
      for (const chunk of rows) yield { out: chunk.out };
      afterSeq = rows[rows.length - 1]!.seq;
    }
  }
}
