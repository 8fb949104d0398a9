import type { ColumnType, Generated, RawBuilder } from 'kysely';
import type { JobState, WireJob } from '@sandfleet/protocol';

/**
 * What a job runs: the wire Job without the fields the coordinator fills in per dequeue
 * (`id`, `token`, `queue`, `version`). Stored as `jobs.payload`.
 */
export type JobSpec = Omit<WireJob, 'id' | 'token' | 'queue' | 'version'>;

/** A timestamptz column: read as Date, written by SQL (`now()`), so optional on insert. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** bytea: read as Buffer (pg) or Uint8Array (PGlite); written only as `decode(…, 'hex')` expressions (token-hash.ts). */
type Bytea = ColumnType<Uint8Array, RawBuilder<Uint8Array>, RawBuilder<Uint8Array>>;

export interface JobsTable {
  id: Generated<number>;
  queue: string;
  state: ColumnType<JobState, JobState | undefined, JobState>;
  /** Written as JSON text (`::jsonb`) so both drivers serialise it the same way. */
  payload: ColumnType<JobSpec, string, string>;
  repository_name: Generated<string>;
  priority: Generated<number>;
  failure_message: string | null;
  queued_at: Timestamp;
  started_at: NullableTimestamp;
  last_heartbeat_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  process_after: NullableTimestamp;
  num_resets: Generated<number>;
  num_failures: Generated<number>;
  attempt: Generated<number>;
  worker_hostname: string | null;
  cancel: Generated<boolean>;
  /** The job this one was created to retry (a user's Retry), if any. */
  retry_of: number | null;
}

/** How an attempt ended; `reset` = given back to the queue without a result (see queue.ts). */
export type AttemptOutcome = 'completed' | 'errored' | 'failed' | 'canceled' | 'reset';

export interface JobAttemptsTable {
  job_id: number;
  attempt: number;
  executor_hostname: string;
  started_at: Date;
  finished_at: Date | null;
  outcome: AttemptOutcome | null;
  reset_reason: string | null;
}

export interface JobTokensTable {
  id: Generated<number>;
  value_sha256: Bytea;
  job_id: number;
  attempt: number;
  queue: string;
  repository_name: string;
  created_at: Timestamp;
}

export interface ExecutorHeartbeatsTable {
  id: Generated<number>;
  hostname: string;
  queue_name: string | null;
  queue_names: ColumnType<string[] | null, never, never>;
  os: string;
  architecture: string;
  docker_version: string;
  executor_version: string;
  git_version: string;
  ignite_version: string;
  src_cli_version: string;
  prometheus_metrics: string | null;
  runtime: Generated<string>;
  first_seen_at: Timestamp;
  last_seen_at: Timestamp;
}

export interface ExecutionLogEntriesTable {
  job_id: number;
  attempt: number;
  /** 1-based, as Sourcegraph's entry IDs (Postgres array indexes) are. */
  idx: number;
  key: string;
  command: ColumnType<string[], string, string>;
  start_time: string;
  exit_code: number | null;
  duration_ms: number | null;
  /** Drawn from the same sequence as chunk ids, bumped on every metadata change: a follower's cursor. */
  change_id: Generated<number>;
  /** The executor's idempotency key (extension `log-entry-key`); NULL from peers without it. */
  client_key: string | null;
}

export interface ExecutionLogChunksTable {
  id: Generated<number>;
  job_id: number;
  attempt: number;
  entry_idx: number;
  seq: number;
  out: string;
  replaces: Generated<boolean>;
}

export interface AdminTokensTable {
  id: Generated<number>;
  value_sha256: Bytea;
  description: string;
  created_at: Timestamp;
  source: ColumnType<AdminTokenSource, AdminTokenSource | undefined, AdminTokenSource>;
  last_used_at: NullableTimestamp;
}

/** Where an admin token came from; see admin-tokens.ts. */
export type AdminTokenSource = 'env' | 'cli' | 'generated';

export interface UiSessionsTable {
  id: Generated<number>;
  value_sha256: Bytea;
  csrf_token: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  /** The admin token signed in with; NULL for sessions from before it was recorded. */
  admin_token_id: ColumnType<number | null, number | null | undefined, number | null>;
}

/** Where an executor secret came from; see executor-secrets.ts. */
export type ExecutorSecretSource = 'config' | 'rotated';

export interface ExecutorSecretsTable {
  id: Generated<number>;
  value_sha256: Bytea;
  source: ExecutorSecretSource;
  created_at: Timestamp;
  expires_at: NullableTimestamp;
}

export interface RepositoriesTable {
  name: string;
  source: string;
  created_at: Timestamp;
}

/** The Kysely database interface: table names as in migrations/0001_init.ts. */
export interface Schema {
  jobs: JobsTable;
  job_tokens: JobTokensTable;
  job_attempts: JobAttemptsTable;
  executor_heartbeats: ExecutorHeartbeatsTable;
  execution_log_entries: ExecutionLogEntriesTable;
  execution_log_chunks: ExecutionLogChunksTable;
  admin_tokens: AdminTokensTable;
  repositories: RepositoriesTable;
  ui_sessions: UiSessionsTable;
  executor_secrets: ExecutorSecretsTable;
}
