import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';

/**
 * What the database knows about when one attempt of a job passed each point of its pickup
 * timeline. The coordinator's own points (queued, dequeued, finished) are the database clock; the
 * executor's (sandbox ready, first step) come from the log entries it sent, in its clock, as text.
 */
export interface AttemptTimelineFacts {
  queue: string;
  queuedAt: Date;
  /** When this attempt was dequeued. */
  dequeuedAt: Date | null;
  finishedAt: Date | null;
  /** The first `setup.<runtime>.start` entry (a sandbox or VM being started), if any. */
  sandboxEntry: { startTime: string; durationMs: number | null } | null;
  /** The start time of the attempt's first entry, whatever its key. */
  firstEntryStartTime: string | null;
  /** The start time of the first `step.*` entry (`step.docker.N`, `step.src.N`, …). */
  firstStepStartTime: string | null;
}

interface TimelineRow {
  queue: string;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  sandbox_start_time: string | null;
  sandbox_duration_ms: number | null;
  first_entry_start_time: string | null;
  first_step_start_time: string | null;
}

/**
 * One statement, by primary keys: the job row and at most three log entries of the attempt (each
 * the lowest index matching its key), so a job with many entries costs no more. Undefined when the
 * job is not in this attempt any more.
 */
export async function readAttemptTimeline(db: Kysely<Schema>, ref: { jobId: number; attempt: number }): Promise<AttemptTimelineFacts | undefined> {
  const { rows } = await sql<TimelineRow>`
    SELECT j.queue, j.queued_at, j.started_at, j.finished_at,
      sandbox.start_time AS sandbox_start_time, sandbox.duration_ms AS sandbox_duration_ms,
      (SELECT e.start_time FROM execution_log_entries e
        WHERE e.job_id = j.id AND e.attempt = j.attempt ORDER BY e.idx LIMIT 1) AS first_entry_start_time,
      (SELECT e.start_time FROM execution_log_entries e
        WHERE e.job_id = j.id AND e.attempt = j.attempt AND e.key LIKE 'step.%' ORDER BY e.idx LIMIT 1) AS first_step_start_time
    FROM jobs j
    LEFT JOIN LATERAL (
      SELECT e.start_time, e.duration_ms FROM execution_log_entries e
      WHERE e.job_id = j.id AND e.attempt = j.attempt AND e.key ~ '^setup\\.[^.]+\\.start$'
      ORDER BY e.idx LIMIT 1
    ) sandbox ON true
    WHERE j.id = ${ref.jobId} AND j.attempt = ${ref.attempt}::integer
  `.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  return {
    queue: row.queue,
    queuedAt: row.queued_at,
    dequeuedAt: row.started_at,
    finishedAt: row.finished_at,
    sandboxEntry: row.sandbox_start_time === null ? null : { startTime: row.sandbox_start_time, durationMs: row.sandbox_duration_ms },
    firstEntryStartTime: row.first_entry_start_time,
    firstStepStartTime: row.first_step_start_time,
  };
}
