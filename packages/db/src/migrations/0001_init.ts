import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The initial schema. One statement per `execute`: PGlite runs queries through the extended
 * protocol, which refuses several statements in one string. Only PG 15-compatible DDL (PGlite is 18).
 */
const statements = [
  sql`CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    state text NOT NULL DEFAULT 'queued'
      CONSTRAINT jobs_state_check CHECK (state IN ('queued', 'processing', 'completed', 'errored', 'failed', 'canceled')),
    payload jsonb NOT NULL,
    repository_name text NOT NULL DEFAULT '',
    priority integer NOT NULL DEFAULT 0,
    failure_message text,
    queued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    last_heartbeat_at timestamptz,
    finished_at timestamptz,
    process_after timestamptz,
    num_resets integer NOT NULL DEFAULT 0,
    num_failures integer NOT NULL DEFAULT 0,
    attempt integer NOT NULL DEFAULT 0,
    worker_hostname text,
    cancel boolean NOT NULL DEFAULT false
  )`,
  // Dequeue walks this index in its ORDER BY: only claimable rows are in it, so it stays small
  // however many finished jobs pile up, and SKIP LOCKED stops at the first unlocked entry.
  // Measured (2-core dev box, loaded): 100k completed + 2k queued jobs, the plan is an Index Scan
  // on jobs_dequeue_idx under LockRows; dequeueJob ~4 ms/op on PG 15, ~3 ms/op on PGlite.
  sql`CREATE INDEX jobs_dequeue_idx ON jobs (queue, priority DESC, id) WHERE state IN ('queued', 'errored')`,
  // The resetter and heartbeats only look at processing rows.
  sql`CREATE INDEX jobs_processing_idx ON jobs (queue, last_heartbeat_at) WHERE state = 'processing'`,
  // Newest-first listings, filtered by queue or by state.
  sql`CREATE INDEX jobs_queue_id_idx ON jobs (queue, id DESC)`,
  sql`CREATE INDEX jobs_state_id_idx ON jobs (state, id DESC)`,

  // One live token per job (UNIQUE job_id): each dequeue upserts the row for its attempt.
  sql`CREATE TABLE job_tokens (
    id bigserial PRIMARY KEY,
    value_sha256 bytea NOT NULL CONSTRAINT job_tokens_value_sha256_key UNIQUE,
    job_id bigint NOT NULL CONSTRAINT job_tokens_job_id_key UNIQUE REFERENCES jobs (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    queue text NOT NULL,
    repository_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,

  sql`CREATE TABLE executor_heartbeats (
    id serial PRIMARY KEY,
    hostname text NOT NULL CONSTRAINT executor_heartbeats_hostname_key UNIQUE,
    queue_name text,
    queue_names text[],
    os text NOT NULL DEFAULT '',
    architecture text NOT NULL DEFAULT '',
    docker_version text NOT NULL DEFAULT '',
    executor_version text NOT NULL DEFAULT '',
    git_version text NOT NULL DEFAULT '',
    ignite_version text NOT NULL DEFAULT '',
    src_cli_version text NOT NULL DEFAULT '',
    prometheus_metrics text,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT executor_heartbeats_one_queue_field CHECK (num_nonnulls(queue_name, queue_names) = 1)
  )`,

  // Chunk ids and entry change ids share this sequence, so one number is a follower's cursor.
  sql`CREATE SEQUENCE execution_log_cursor_seq`,
  sql`CREATE TABLE execution_log_entries (
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    idx integer NOT NULL CHECK (idx >= 1),
    key text NOT NULL,
    command jsonb NOT NULL DEFAULT '[]',
    start_time text NOT NULL DEFAULT '',
    exit_code integer,
    duration_ms integer,
    change_id bigint NOT NULL DEFAULT nextval('execution_log_cursor_seq'),
    PRIMARY KEY (job_id, attempt, idx)
  )`,
  sql`CREATE INDEX execution_log_entries_change_idx ON execution_log_entries (job_id, change_id)`,
  // Output is appended as rows, never by rewriting a growing value: a 100 MB log costs linear time.
  sql`CREATE TABLE execution_log_chunks (
    id bigint PRIMARY KEY DEFAULT nextval('execution_log_cursor_seq'),
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    entry_idx integer NOT NULL,
    seq integer NOT NULL,
    out text NOT NULL,
    replaces boolean NOT NULL DEFAULT false,
    CONSTRAINT execution_log_chunks_seq_key UNIQUE (job_id, attempt, entry_idx, seq),
    FOREIGN KEY (job_id, attempt, entry_idx) REFERENCES execution_log_entries (job_id, attempt, idx) ON DELETE CASCADE
  )`,
  sql`ALTER SEQUENCE execution_log_cursor_seq OWNED BY execution_log_chunks.id`,
  sql`CREATE INDEX execution_log_chunks_follow_idx ON execution_log_chunks (job_id, id)`,

  sql`CREATE TABLE admin_tokens (
    id bigserial PRIMARY KEY,
    value_sha256 bytea NOT NULL CONSTRAINT admin_tokens_value_sha256_key UNIQUE,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
  )`,

  sql`CREATE TABLE repositories (
    name text PRIMARY KEY,
    source text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
];

export const migration0001: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await statement.execute(db);
  },
};
