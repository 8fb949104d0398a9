import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';
import { JOB_LOGS_CHANNEL, notifyCommitted } from './notify.js';
import { PREPARED } from './prepared-statements.js';

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

/** The job's columns are null when it is not in this attempt any more (the LEFT JOIN found no row). */
interface TimelineRow {
  queue: string | null;
  queued_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  sandbox_start_time: string | null;
  sandbox_duration_ms: number | null;
  first_entry_start_time: string | null;
  first_step_start_time: string | null;
}

/** What the announcement of a committed final mark read of the attempt's timeline. */
export interface FinishAnnouncement {
  /** Undefined when the job left this attempt since, or when the read failed (`timelineError`). */
  timeline: AttemptTimelineFacts | undefined;
  /** Why the timeline could not be read; the notification was sent all the same. */
  timelineError?: Error;
}

/**
 * Announces a final mark that has committed: notifies the job's log followers and, in the same
 * statement, reads the attempt's pickup timeline (the job row and at most three of its log entries,
 * each the lowest index matching its key, by primary keys, so a job with many entries costs no
 * more). The statement writes no WAL, so it commits without a flush (notifyCommitted says why the
 * notification is not sent inside the mark). If it fails, the notification is sent alone and the
 * error returned: the mark stands and followers are still woken (at worst twice, which they
 * tolerate: a notification only says "re-read").
 */
export async function announceFinished(db: Kysely<Schema>, ref: { jobId: number; attempt: number }): Promise<FinishAnnouncement> {
  const jobId = String(ref.jobId);
  let rows: TimelineRow[];
  try {
    ({ rows } = await sql<TimelineRow>`
      ${sql.raw(PREPARED)}
      SELECT pg_notify(${JOB_LOGS_CHANNEL}, ${jobId}) AS notified, timeline.*
      FROM (SELECT 1) AS one
      LEFT JOIN (
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
      ) AS timeline ON true
    `.execute(db));
  } catch (err) {
    await notifyCommitted(db, JOB_LOGS_CHANNEL, jobId);
    return { timeline: undefined, timelineError: err instanceof Error ? err : new Error(String(err)) };
  }
  return { timeline: toTimelineFacts(rows[0]) };
}

function toTimelineFacts(row: TimelineRow | undefined): AttemptTimelineFacts | undefined {
  if (!row || row.queue === null || row.queued_at === null) return undefined;
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
