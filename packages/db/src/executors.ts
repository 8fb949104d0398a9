import { sql, type Kysely, type Selectable } from 'kysely';
import type { ExecutorHeartbeatsTable, Schema } from './schema.js';
import { msInterval, textArray } from './sql-values.js';

/** The executors registry (docs/protocol.md, "Heartbeat and cancellation"): one row per executor name, refreshed by each heartbeat. */

type Db = Kysely<Schema>;

export interface ExecutorHeartbeatInput {
  /** The executor name (`<hostname>-<uuid>`), unique per process. */
  hostname: string;
  /** Exactly one of queueName / queueNames (single- or multi-queue executor). */
  queueName?: string;
  queueNames?: readonly string[];
  os?: string;
  architecture?: string;
  dockerVersion?: string;
  executorVersion?: string;
  gitVersion?: string;
  igniteVersion?: string;
  srcCliVersion?: string;
  /** Prometheus text exposition the executor forwarded with its heartbeat. */
  prometheusMetrics?: string;
  /** The sandbox runtime the executor runs steps in (a Sandfleet extension; empty when not sent). */
  runtime?: string;
}

export interface ExecutorRecord {
  id: number;
  hostname: string;
  queueName: string | null;
  queueNames: string[] | null;
  os: string;
  architecture: string;
  dockerVersion: string;
  executorVersion: string;
  gitVersion: string;
  igniteVersion: string;
  srcCliVersion: string;
  prometheusMetrics: string | null;
  runtime: string;
  firstSeenAt: Date;
  lastSeenAt: Date;
}

function toExecutor(row: Selectable<ExecutorHeartbeatsTable>): ExecutorRecord {
  return {
    id: row.id,
    hostname: row.hostname,
    queueName: row.queue_name,
    queueNames: row.queue_names,
    os: row.os,
    architecture: row.architecture,
    dockerVersion: row.docker_version,
    executorVersion: row.executor_version,
    gitVersion: row.git_version,
    igniteVersion: row.ignite_version,
    srcCliVersion: row.src_cli_version,
    prometheusMetrics: row.prometheus_metrics,
    runtime: row.runtime,
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
  };
}

/**
 * Records a heartbeat: inserts the executor or updates every field; first_seen_at is set only on
 * insert, last_seen_at = now. Throws (check violation) unless exactly one of queueName / queueNames is given.
 */
export async function upsertExecutorHeartbeat(db: Db, input: ExecutorHeartbeatInput): Promise<ExecutorRecord> {
  const queueNames = input.queueNames === undefined ? null : textArray(input.queueNames);
  const values = {
    hostname: input.hostname,
    queue_name: input.queueName ?? null,
    os: input.os ?? '',
    architecture: input.architecture ?? '',
    docker_version: input.dockerVersion ?? '',
    executor_version: input.executorVersion ?? '',
    git_version: input.gitVersion ?? '',
    ignite_version: input.igniteVersion ?? '',
    src_cli_version: input.srcCliVersion ?? '',
    prometheus_metrics: input.prometheusMetrics ?? null,
    runtime: input.runtime ?? '',
  };
  const { rows } = await sql<Selectable<ExecutorHeartbeatsTable>>`
    INSERT INTO executor_heartbeats (hostname, queue_name, queue_names, os, architecture, docker_version,
      executor_version, git_version, ignite_version, src_cli_version, prometheus_metrics, runtime)
    VALUES (${values.hostname}, ${values.queue_name}, ${queueNames}, ${values.os}, ${values.architecture},
      ${values.docker_version}, ${values.executor_version}, ${values.git_version}, ${values.ignite_version},
      ${values.src_cli_version}, ${values.prometheus_metrics}, ${values.runtime})
    ON CONFLICT (hostname) DO UPDATE SET
      queue_name = excluded.queue_name,
      queue_names = excluded.queue_names,
      os = excluded.os,
      architecture = excluded.architecture,
      docker_version = excluded.docker_version,
      executor_version = excluded.executor_version,
      git_version = excluded.git_version,
      ignite_version = excluded.ignite_version,
      src_cli_version = excluded.src_cli_version,
      prometheus_metrics = excluded.prometheus_metrics,
      runtime = excluded.runtime,
      last_seen_at = now()
    RETURNING *
  `.execute(db);
  return toExecutor(rows[0]!);
}

/** Whether an executor of this name has sent a heartbeat (and was not yet cleaned up). */
export async function executorExists(db: Db, hostname: string): Promise<boolean> {
  const row = await db.selectFrom('executor_heartbeats').select('id').where('hostname', '=', hostname).executeTakeFirst();
  return row !== undefined;
}

/** Every known executor, most recently seen first. */
export async function listExecutors(db: Db): Promise<ExecutorRecord[]> {
  const rows = await db.selectFrom('executor_heartbeats').selectAll().orderBy('last_seen_at', 'desc').orderBy('id', 'desc').execute();
  return rows.map(toExecutor);
}

/** One executor by name. */
export async function getExecutor(db: Db, hostname: string): Promise<ExecutorRecord | undefined> {
  const row = await db.selectFrom('executor_heartbeats').selectAll().where('hostname', '=', hostname).executeTakeFirst();
  return row ? toExecutor(row) : undefined;
}

/** The janitor: deletes executors not seen for longer than maxAgeMs (Sourcegraph: 168 h). Returns how many. */
export async function deleteStaleExecutors(db: Db, maxAgeMs: number): Promise<number> {
  const result = await db
    .deleteFrom('executor_heartbeats')
    .where('last_seen_at', '<', sql<Date>`now() - ${msInterval(maxAgeMs)}`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
