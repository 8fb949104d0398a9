import { storableText } from './stored-text.js';
import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import { JOB_STATES, type JobState } from '@sandfleet/protocol';
import type { AttemptOutcome, JobSpec, JobsTable, Schema } from './schema.js';
import { JOB_LOGS_CHANNEL, JOBS_CHANNEL, notifyCommitted } from './notify.js';
import { announceFinished, type FinishAnnouncement } from './job-timeline.js';
import { newSecret, sha256Hex } from './token-hash.js';
import { bigintArray, msInterval } from './sql-values.js';
import { PREPARED } from './prepared-statements.js';

/**
 * Queue operations on the `jobs` table (docs/protocol.md, "Job states and resets"). Each is one SQL statement, so each is atomic
 * without a transaction, and races end as "no row" rather than as errors: a caller that loses a
 * race gets `undefined` / `false` / an id missing from a list.
 */

type Db = Kysely<Schema>;
type JobRow = Selectable<JobsTable>;

/** A job as this package returns it. Times are Dates; `attempt` counts dequeues (0 = never dequeued). */
export interface Job {
  id: number;
  queue: string;
  state: JobState;
  spec: JobSpec;
  repositoryName: string;
  priority: number;
  failureMessage: string | null;
  queuedAt: Date;
  startedAt: Date | null;
  lastHeartbeatAt: Date | null;
  finishedAt: Date | null;
  processAfter: Date | null;
  numResets: number;
  numFailures: number;
  attempt: number;
  workerHostname: string | null;
  cancel: boolean;
  /** The job this one retries (see retryJob), or null. */
  retryOf: number | null;
}

/** The failure message Sourcegraph's resetter writes; kept verbatim for UIs that match on it. */
export const RESET_FAILURE_MESSAGE = 'job processor died while handling this message too many times';

export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    queue: row.queue,
    state: row.state,
    spec: row.payload,
    repositoryName: row.repository_name,
    priority: row.priority,
    failureMessage: row.failure_message,
    queuedAt: row.queued_at,
    startedAt: row.started_at,
    lastHeartbeatAt: row.last_heartbeat_at,
    finishedAt: row.finished_at,
    processAfter: row.process_after,
    numResets: row.num_resets,
    numFailures: row.num_failures,
    attempt: row.attempt,
    workerHostname: row.worker_hostname,
    cancel: row.cancel,
    retryOf: row.retry_of,
  };
}

export interface EnqueueJobInput {
  queue: string;
  spec: JobSpec;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Not dequeued before this time. Default: immediately. */
  processAfter?: Date;
}

/**
 * Inserts a queued job, then (once the insert committed) notifies `sandfleet_jobs` with the queue
 * name so long-polling dequeues wake up (notifyCommitted says why not in the insert).
 */
export async function enqueueJob(db: Db, input: EnqueueJobInput): Promise<Job> {
  const { rows } = await sql<JobRow>`
    INSERT INTO jobs (queue, payload, repository_name, priority, process_after)
    VALUES (
      ${input.queue}, ${JSON.stringify(input.spec)}::jsonb, ${input.spec.repositoryName ?? ''},
      ${input.priority ?? 0}::integer, ${input.processAfter?.toISOString() ?? null}::timestamptz
    )
    RETURNING *
  `.execute(db);
  await notifyCommitted(db, JOBS_CHANNEL, input.queue);
  return toJob(rows[0]!);
}

/**
 * Inserts queued jobs in one statement, so all of them or none: ids ascend in the order given and
 * come back in that order. It notifies `sandfleet_jobs` once per queue among them in the same
 * statement (delivered at its commit). Unlike enqueueJob's, this notification stays inside: a
 * batch pays the commit-ordering cost of a notifying transaction once for all its jobs, and a
 * separate statement would cost more than it saves.
 */
export async function enqueueJobs(db: Db, inputs: readonly EnqueueJobInput[]): Promise<number[]> {
  if (inputs.length === 0) return [];
  // One jsonb parameter for the whole batch: any size fits one statement, on pg and PGlite alike.
  const batch = inputs.map((input) => ({
    queue: input.queue,
    spec: input.spec,
    repositoryName: input.spec.repositoryName ?? '',
    priority: input.priority ?? 0,
    processAfter: input.processAfter?.toISOString() ?? null,
  }));
  const { rows } = await sql<{ id: number }>`
    WITH batch AS (
      SELECT value, ordinality FROM jsonb_array_elements(${JSON.stringify(batch)}::jsonb) WITH ORDINALITY
    ),
    inserted AS (
      INSERT INTO jobs (queue, payload, repository_name, priority, process_after)
      SELECT value->>'queue', value->'spec', value->>'repositoryName', (value->>'priority')::integer, (value->>'processAfter')::timestamptz
      FROM batch
      ORDER BY ordinality
      RETURNING id, queue
    ),
    notified AS (
      SELECT pg_notify(${JOBS_CHANNEL}, queue) FROM (SELECT DISTINCT queue FROM inserted) AS queues
    )
    SELECT id FROM inserted WHERE (SELECT count(*) FROM notified) > 0 ORDER BY id
  `.execute(db);
  return rows.map((row) => row.id);
}

export interface DequeueJobInput {
  queue: string;
  /** The executor's unique name; it becomes `worker_hostname` and fences every later write. */
  executorName: string;
  /**
   * Errored jobs are dequeued again this long after they finished. 0 (default, as Sourcegraph's
   * queues) never re-dequeues them; with maxRetries 0 `markErrored` ends in failed anyway.
   */
  retryAfterMs?: number;
}

export interface DequeuedJob {
  job: Job;
  /** Plaintext job token (40 hex chars) scoped to this job, attempt, queue and repository; only its sha256 is stored. */
  token: string;
}

/**
 * Claims the next job of a queue: queued (and past process_after), or errored past retry-after;
 * highest priority first, then oldest. `FOR UPDATE SKIP LOCKED` makes concurrent claimers take
 * different jobs, and the re-check of the row after locking (READ COMMITTED) skips a job another
 * claimer committed first. Starts a new attempt (attempt + 1) and mints its token, replacing the
 * previous attempt's, and records the attempt in job_attempts, in the same statement. Logs of
 * earlier attempts are kept.
 * Returns undefined when nothing is claimable.
 */
export async function dequeueJob(db: Db, input: DequeueJobInput): Promise<DequeuedJob | undefined> {
  return (await dequeueJobs(db, { ...input, maxJobs: 1 }))[0];
}

/**
 * Claims up to `maxJobs` jobs in one statement, as dequeueJob claims one: each gets its own
 * attempt and job token. Fewer (or none) when fewer are claimable. Highest priority first, then oldest.
 */
export async function dequeueJobs(db: Db, input: DequeueJobInput & { maxJobs: number }): Promise<DequeuedJob[]> {
  const maxJobs = Math.max(1, Math.floor(input.maxJobs));
  const tokens = Array.from({ length: maxJobs }, () => newSecret());
  const retryAfterMs = input.retryAfterMs ?? 0;
  const { rows } = await sql<JobRow & { token_index: number }>`
    ${sql.raw(PREPARED)}
    WITH candidate AS (
      SELECT id FROM jobs
      WHERE queue = ${input.queue}
        AND state IN ('queued', 'errored')
        AND (
          (state = 'queued' AND (process_after IS NULL OR process_after <= now()))
          OR (${retryAfterMs > 0} AND state = 'errored' AND finished_at <= now() - ${msInterval(retryAfterMs)})
        )
      ORDER BY priority DESC, id
      LIMIT ${maxJobs}::integer
      FOR UPDATE SKIP LOCKED
    ),
    claimed AS (
      UPDATE jobs SET
        state = 'processing',
        started_at = now(),
        last_heartbeat_at = now(),
        finished_at = NULL,
        failure_message = NULL,
        worker_hostname = ${input.executorName},
        attempt = jobs.attempt + 1
      FROM candidate
      WHERE jobs.id = candidate.id
      RETURNING jobs.*
    ),
    -- Each claimed job takes the token hash at its position (1-based) in the list (hex digits only,
    -- so the array literal needs no quoting).
    numbered AS (
      SELECT claimed.*, row_number() OVER (ORDER BY claimed.id)::integer AS token_index FROM claimed
    ),
    minted AS (
      INSERT INTO job_tokens (value_sha256, job_id, attempt, queue, repository_name)
      SELECT decode((${`{${tokens.map(sha256Hex).join(',')}}`}::text[])[token_index], 'hex'), id, attempt, queue, repository_name FROM numbered
      ON CONFLICT (job_id) DO UPDATE SET
        value_sha256 = excluded.value_sha256,
        attempt = excluded.attempt,
        queue = excluded.queue,
        repository_name = excluded.repository_name,
        created_at = now()
      RETURNING job_id
    ),
    attempted AS (
      INSERT INTO job_attempts (job_id, attempt, executor_hostname, started_at)
      SELECT id, attempt, worker_hostname, started_at FROM claimed
    )
    SELECT numbered.* FROM numbered JOIN minted ON minted.job_id = numbered.id
    ORDER BY numbered.priority DESC, numbered.id
  `.execute(db);
  return rows.map(({ token_index, ...row }) => ({ job: toJob(row as JobRow), token: tokens[token_index - 1]! }));
}

export interface HeartbeatJobsInput {
  executorName: string;
  queue: string;
  jobIds: readonly number[];
}

export interface HeartbeatResult {
  /** Jobs this executor still holds (their last_heartbeat_at is now). Others are lost to it. */
  knownIds: number[];
  /** Of knownIds, the ones a user asked to cancel. */
  cancelIds: number[];
}

/** Refreshes last_heartbeat_at of the listed jobs that are processing and held by this executor. */
export async function heartbeatJobs(db: Db, input: HeartbeatJobsInput): Promise<HeartbeatResult> {
  if (input.jobIds.length === 0) return { knownIds: [], cancelIds: [] };
  const { rows } = await sql<{ id: number; cancel: boolean }>`
    UPDATE jobs SET last_heartbeat_at = now()
    WHERE id = ANY(${bigintArray(input.jobIds)})
      AND queue = ${input.queue}
      AND state = 'processing'
      AND worker_hostname = ${input.executorName}
    RETURNING id, cancel
  `.execute(db);
  const sorted = rows.sort((a, b) => a.id - b.id);
  return { knownIds: sorted.map((r) => r.id), cancelIds: sorted.filter((r) => r.cancel).map((r) => r.id) };
}

/** Identifies the holder of a job: every final mark and log write must match all four. */
export interface JobAttemptRef {
  jobId: number;
  queue: string;
  executorName: string;
  /** The attempt the executor was given at dequeue (from its job token). */
  attempt: number;
}

/** The reason an attempt records when it ended canceled because a user asked for it. */
export const CANCELED_REASON = 'canceled by a user';

/**
 * Runs a final transition on the job if it is processing and held by this executor and attempt,
 * and deletes the job's token and records the attempt's outcome with it. Undefined when no row
 * changed; else the transition has committed and was announced (announceFinished: log followers
 * notified, the attempt's pickup timeline read with it).
 */
async function finishJob(db: Db, ref: JobAttemptRef, set: RawBuilder<unknown>): Promise<FinishAnnouncement | undefined> {
  const { rows } = await sql<{ id: number }>`
    ${sql.raw(PREPARED)}
    WITH finished AS (
      UPDATE jobs SET ${set}, finished_at = now()
      WHERE id = ${ref.jobId}
        AND queue = ${ref.queue}
        AND state = 'processing'
        AND worker_hostname = ${ref.executorName}
        AND attempt = ${ref.attempt}::integer
      RETURNING id, attempt, state, finished_at
    ),
    revoked AS (
      DELETE FROM job_tokens WHERE job_id IN (SELECT id FROM finished)
    ),
    recorded AS (
      UPDATE job_attempts SET
        finished_at = finished.finished_at,
        outcome = finished.state,
        reset_reason = CASE WHEN finished.state = 'canceled' THEN ${CANCELED_REASON} END
      FROM finished
      WHERE job_attempts.job_id = finished.id AND job_attempts.attempt = finished.attempt
    )
    SELECT id FROM finished
  `.execute(db);
  if (rows.length !== 1) return undefined;
  return announceFinished(db, ref);
}

/** processing → completed. Undefined when this executor/attempt no longer holds the job. */
export async function markComplete(db: Db, ref: JobAttemptRef): Promise<FinishAnnouncement | undefined> {
  return finishJob(db, ref, sql`state = 'completed'`);
}

export interface MarkErroredInput extends JobAttemptRef {
  errorMessage: string;
  /** Failures allowed before the job fails for good. Default 0, as Sourcegraph's queues: errored → failed. */
  maxRetries?: number;
}

/**
 * processing → canceled if cancel was requested, failed once num_failures + 1 >= maxRetries, else
 * errored (retried after the queue's retry-after). num_failures + 1 unless canceled.
 */
export async function markErrored(db: Db, input: MarkErroredInput): Promise<FinishAnnouncement | undefined> {
  const maxRetries = input.maxRetries ?? 0;
  return finishJob(
    db,
    input,
    sql`state = CASE
          WHEN cancel THEN 'canceled'
          WHEN num_failures + 1 >= ${maxRetries}::integer THEN 'failed'
          ELSE 'errored'
        END,
        num_failures = CASE WHEN cancel THEN num_failures ELSE num_failures + 1 END,
        failure_message = ${storableText(input.errorMessage)}`,
  );
}

export interface MarkFailedInput extends JobAttemptRef {
  errorMessage: string;
}

/** processing → canceled if cancel was requested, else failed (never retried). */
export async function markFailed(db: Db, input: MarkFailedInput): Promise<FinishAnnouncement | undefined> {
  return finishJob(
    db,
    input,
    sql`state = CASE WHEN cancel THEN 'canceled' ELSE 'failed' END, failure_message = ${storableText(input.errorMessage)}`,
  );
}

/**
 * Cancels a job. queued/errored → canceled now. processing → cancel = true and the state stays
 * processing: the executor learns it from its next heartbeat and reports markFailed, which ends in
 * canceled. Returns the state after the call, or undefined when the job does not exist or had
 * already finished (completed, failed, canceled: unchanged).
 */
export async function cancelJob(db: Db, id: number): Promise<JobState | undefined> {
  const { rows } = await sql<{ state: JobState }>`
    UPDATE jobs SET
      state = CASE WHEN state IN ('queued', 'errored') THEN 'canceled' ELSE state END,
      finished_at = CASE WHEN state IN ('queued', 'errored') THEN now() ELSE finished_at END,
      cancel = true
    WHERE id = ${id} AND state IN ('queued', 'errored', 'processing')
    RETURNING state, pg_notify(${JOB_LOGS_CHANNEL}, id::text)::text AS notified
  `.execute(db);
  return rows[0]?.state;
}

export interface ResetStalledInput {
  queue: string;
  /** A processing job whose last heartbeat is older than this is stalled (Sourcegraph: 25 s). */
  stalledMaxAgeMs: number;
  /** Resets allowed before a stalled job fails (Sourcegraph: 3). */
  maxResets: number;
}

export interface ResetStalledResult {
  /** Back to queued, num_resets + 1. */
  reset: number[];
  /** num_resets had reached maxResets: failed with RESET_FAILURE_MESSAGE. */
  failed: number[];
  /** Cancel had been requested: canceled rather than run again. */
  canceled: number[];
}

/**
 * Returns stalled jobs to the queue (or fails them after maxResets). Their tokens are deleted in the
 * same statement, so the old executor is locked out at once; its late marks and log writes are
 * refused by the attempt fence anyway. The attempt's row in job_attempts records why it ended. Jobs locked right now (a heartbeat in flight) are skipped
 * until the next run. Notifies the queue when something was re-queued.
 */
export async function resetStalled(db: Db, input: ResetStalledInput): Promise<ResetStalledResult> {
  const reasons = stalledReasons(input);
  const { rows } = await sql<{ id: number; state: JobState }>`
    WITH stalled AS (
      SELECT id FROM jobs
      WHERE queue = ${input.queue}
        AND state = 'processing'
        AND last_heartbeat_at < now() - ${msInterval(input.stalledMaxAgeMs)}
      FOR UPDATE SKIP LOCKED
    ),
    updated AS (
      UPDATE jobs SET
        state = CASE
          WHEN cancel THEN 'canceled'
          WHEN num_resets >= ${input.maxResets}::integer THEN 'failed'
          ELSE 'queued'
        END,
        num_resets = CASE WHEN NOT cancel AND num_resets < ${input.maxResets}::integer THEN num_resets + 1 ELSE num_resets END,
        failure_message = CASE
          WHEN cancel THEN failure_message
          WHEN num_resets >= ${input.maxResets}::integer THEN ${RESET_FAILURE_MESSAGE}
          ELSE failure_message
        END,
        queued_at = CASE WHEN NOT cancel AND num_resets < ${input.maxResets}::integer THEN now() ELSE queued_at END,
        started_at = CASE WHEN NOT cancel AND num_resets < ${input.maxResets}::integer THEN NULL ELSE started_at END,
        finished_at = CASE WHEN NOT cancel AND num_resets < ${input.maxResets}::integer THEN NULL ELSE now() END
      FROM stalled
      WHERE jobs.id = stalled.id
      RETURNING jobs.id, jobs.state, jobs.attempt
    ),
    revoked AS (
      DELETE FROM job_tokens WHERE job_id IN (SELECT id FROM updated)
    ),
    recorded AS (
      UPDATE job_attempts SET
        finished_at = now(),
        outcome = CASE WHEN updated.state = 'queued' THEN 'reset' ELSE updated.state END,
        reset_reason = CASE updated.state
          WHEN 'queued' THEN ${reasons.reset}
          WHEN 'failed' THEN ${reasons.failed}
          ELSE ${reasons.canceled}
        END
      FROM updated
      WHERE job_attempts.job_id = updated.id AND job_attempts.attempt = updated.attempt
    )
    SELECT id, state,
      (SELECT pg_notify(${JOBS_CHANNEL}, ${input.queue}) WHERE state = 'queued')::text AS notified,
      pg_notify(${JOB_LOGS_CHANNEL}, id::text)::text AS notified_followers
    FROM updated
    ORDER BY id
  `.execute(db);
  const ids = (state: JobState) => rows.filter((r) => r.state === state).map((r) => r.id);
  return { reset: ids('queued'), failed: ids('failed'), canceled: ids('canceled') };
}

/** What job_attempts says about an attempt the resetter ended. */
function stalledReasons(input: ResetStalledInput) {
  const silent = `no heartbeat for over ${formatAge(input.stalledMaxAgeMs)}`;
  return {
    reset: `${silent}: returned to the queue`,
    failed: `${silent}, after ${input.maxResets} reset(s): failed`,
    canceled: `${silent} while a cancel was pending: canceled`,
  };
}

function formatAge(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** States a user may retry from: the job ran (or was canceled) and will not run again by itself. */
export const RETRYABLE_STATES: readonly JobState[] = ['completed', 'errored', 'failed', 'canceled'];

/**
 * Enqueues a new job with the same queue, payload, repository and priority as a finished one,
 * linked to it by retry_of; notifies the queue in the same statement. Undefined when the job does
 * not exist or is not in a RETRYABLE_STATES state.
 */
export async function retryJob(db: Db, id: number): Promise<Job | undefined> {
  const { rows } = await sql<JobRow>`
    WITH inserted AS (
      INSERT INTO jobs (queue, payload, repository_name, priority, retry_of)
      SELECT queue, payload, repository_name, priority, id FROM jobs
      WHERE id = ${id} AND state IN (${sql.join(RETRYABLE_STATES)})
      RETURNING *
    )
    SELECT inserted.*, pg_notify(${JOBS_CHANNEL}, inserted.queue)::text AS notified FROM inserted
  `.execute(db);
  const row = rows[0];
  return row ? toJob(row) : undefined;
}

/** The jobs made by retrying this one, oldest first. */
export async function listRetriesOf(db: Db, id: number): Promise<Job[]> {
  return (await db.selectFrom('jobs').selectAll().where('retry_of', '=', id).orderBy('id').execute()).map(toJob);
}

/** One attempt of a job: who ran it, when, and how it ended (null while it runs). */
export interface JobAttempt {
  attempt: number;
  executorHostname: string;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: AttemptOutcome | null;
  resetReason: string | null;
}

/** A job's attempts, first first. Attempts made before job_attempts existed are not listed. */
export async function listJobAttempts(db: Db, jobId: number): Promise<JobAttempt[]> {
  const rows = await db.selectFrom('job_attempts').selectAll().where('job_id', '=', jobId).orderBy('attempt').execute();
  return rows.map((row) => ({
    attempt: row.attempt,
    executorHostname: row.executor_hostname,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    outcome: row.outcome,
    resetReason: row.reset_reason,
  }));
}

/** Processing jobs per executor name, lowest id first, for the executors page. */
export async function processingJobsByExecutor(db: Db, executorNames: readonly string[]): Promise<Map<string, Job[]>> {
  const result = new Map<string, Job[]>();
  if (executorNames.length === 0) return result;
  const rows = await db
    .selectFrom('jobs')
    .selectAll()
    .where('state', '=', 'processing')
    .where('worker_hostname', 'in', [...executorNames])
    .orderBy('id')
    .execute();
  for (const job of rows.map(toJob)) {
    const list = result.get(job.workerHostname!) ?? [];
    list.push(job);
    result.set(job.workerHostname!, list);
  }
  return result;
}

/** One job by id. */
export async function getJob(db: Db, id: number): Promise<Job | undefined> {
  const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toJob(row) : undefined;
}

export interface ListJobsInput {
  queue?: string;
  state?: JobState;
  /** Exact repository name. */
  repositoryName?: string;
  /** Maximum rows returned. */
  limit: number;
  /** Keyset pagination: only jobs with a smaller id (pass the last id of the previous page). */
  beforeId?: number;
}

/** Jobs newest first (id descending), optionally filtered by queue, state and repository. */
export async function listJobs(db: Db, input: ListJobsInput): Promise<Job[]> {
  let query = db.selectFrom('jobs').selectAll().orderBy('id', 'desc').limit(input.limit);
  if (input.queue !== undefined) query = query.where('queue', '=', input.queue);
  if (input.state !== undefined) query = query.where('state', '=', input.state);
  if (input.repositoryName !== undefined) query = query.where('repository_name', '=', input.repositoryName);
  if (input.beforeId !== undefined) query = query.where('id', '<', input.beforeId);
  return (await query.execute()).map(toJob);
}

export type QueueStateCounts = Record<JobState, number>;

/** Number of jobs per state, optionally of one queue and/or repository; every state is present. */
export async function jobStateCounts(db: Db, filter: { queue?: string; repositoryName?: string }): Promise<QueueStateCounts> {
  let query = db.selectFrom('jobs').select(['state', (eb) => eb.fn.countAll<number>().as('count')]).groupBy('state');
  if (filter.queue !== undefined) query = query.where('queue', '=', filter.queue);
  if (filter.repositoryName !== undefined) query = query.where('repository_name', '=', filter.repositoryName);
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as QueueStateCounts;
  for (const row of await query.execute()) counts[row.state] = Number(row.count);
  return counts;
}

/** Number of jobs per queue and state; every state is present (0 when none). */
export async function queueCounts(db: Db): Promise<Record<string, QueueStateCounts>> {
  const rows = await db
    .selectFrom('jobs')
    .select(['queue', 'state', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy(['queue', 'state'])
    .execute();
  const result: Record<string, QueueStateCounts> = {};
  for (const row of rows) {
    const counts = (result[row.queue] ??= Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as QueueStateCounts);
    counts[row.state] = Number(row.count);
  }
  return result;
}

/**
 * The queue size Sourcegraph publishes for autoscaling: queued + errored jobs, plus processing
 * ones when includeProcessing.
 */
export async function queuedCount(db: Db, queue: string, includeProcessing: boolean): Promise<number> {
  const states: JobState[] = includeProcessing ? ['queued', 'errored', 'processing'] : ['queued', 'errored'];
  const row = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('queue', '=', queue)
    .where('state', 'in', states)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}
