import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Job history for the web UI: one row per attempt (written by the same statements that dequeue,
 * mark and reset a job, see queue.ts), the job a retry was made from, and the runtime an executor
 * reports with its heartbeat (a Sandfleet extension; empty for executors that do not send it).
 */
const statements = [
  sql`CREATE TABLE job_attempts (
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt integer NOT NULL CHECK (attempt >= 1),
    executor_hostname text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text CONSTRAINT job_attempts_outcome_check CHECK (outcome IN ('completed', 'errored', 'failed', 'canceled', 'reset')),
    reset_reason text,
    PRIMARY KEY (job_id, attempt)
  )`,
  sql`ALTER TABLE jobs ADD COLUMN retry_of bigint REFERENCES jobs (id) ON DELETE SET NULL`,
  sql`CREATE INDEX jobs_retry_of_idx ON jobs (retry_of) WHERE retry_of IS NOT NULL`,
  // Newest-first listings filtered by repository.
  sql`CREATE INDEX jobs_repository_id_idx ON jobs (repository_name, id DESC)`,
  // The executors page lists each executor's running jobs.
  sql`CREATE INDEX jobs_worker_processing_idx ON jobs (worker_hostname) WHERE state = 'processing'`,
  sql`ALTER TABLE executor_heartbeats ADD COLUMN runtime text NOT NULL DEFAULT ''`,
];

export const migration0004: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await statement.execute(db);
  },
};
