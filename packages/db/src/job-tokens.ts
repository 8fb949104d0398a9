import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';
import { sha256Bytea } from './token-hash.js';
import { PREPARED } from './prepared-statements.js';

/** What a job token grants: routes for this job, attempt, queue and repository only. */
export interface JobTokenScope {
  jobId: number;
  attempt: number;
  queue: string;
  repositoryName: string;
}

/**
 * Looks a presented job token up by its sha256 (an index lookup on a hash, so timing reveals
 * nothing about the plaintext). Undefined for unknown tokens and for tokens revoked by a final mark,
 * a stall reset or the next attempt's dequeue.
 */
export async function findJobToken(db: Kysely<Schema>, plaintext: string): Promise<JobTokenScope | undefined> {
  const row = await db
    .selectFrom('job_tokens')
    .select(['job_id', 'attempt', 'queue', 'repository_name'])
    .where('value_sha256', '=', sha256Bytea(plaintext))
    .executeTakeFirst();
  return row ? { jobId: row.job_id, attempt: row.attempt, queue: row.queue, repositoryName: row.repository_name } : undefined;
}

/**
 * findJobToken and whether `executorName` is a registered executor, in one round trip: the job
 * routes ask both on every request.
 */
export async function findJobTokenOfExecutor(db: Kysely<Schema>, plaintext: string, executorName: string): Promise<(JobTokenScope & { executorKnown: boolean }) | undefined> {
  const row = await db
    .selectFrom('job_tokens')
    .modifyFront(sql.raw(PREPARED))
    .select(['job_id', 'attempt', 'queue', 'repository_name'])
    .select((eb) => eb.exists(eb.selectFrom('executor_heartbeats').select('id').where('hostname', '=', executorName)).as('executor_known'))
    .where('value_sha256', '=', sha256Bytea(plaintext))
    .executeTakeFirst();
  return row ? { jobId: row.job_id, attempt: row.attempt, queue: row.queue, repositoryName: row.repository_name, executorKnown: Boolean(row.executor_known) } : undefined;
}

/**
 * The janitor: deletes tokens that no longer grant anything — their job is not processing any more
 * or has moved on to another attempt. Final marks, stall resets and the next dequeue already revoke
 * tokens; this catches what they miss (a job canceled while queued after an earlier attempt, rows
 * left by older versions). Returns how many.
 */
export async function deleteOrphanedJobTokens(db: Kysely<Schema>): Promise<number> {
  const result = await db
    .deleteFrom('job_tokens')
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('jobs')
            .select('jobs.id')
            .whereRef('jobs.id', '=', 'job_tokens.job_id')
            .whereRef('jobs.attempt', '=', 'job_tokens.attempt')
            .where('jobs.state', '=', 'processing'),
        ),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
