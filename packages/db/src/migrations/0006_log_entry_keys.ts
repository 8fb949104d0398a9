import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The executor's idempotency key of a log entry (extension `log-entry-key`): a retried
 * addExecutionLogEntry finds the entry its lost first answer named instead of adding another.
 * Unique per attempt; entries from peers without the key keep NULL.
 */
const statements = [
  sql`ALTER TABLE execution_log_entries ADD COLUMN client_key text`,
  sql`CREATE UNIQUE INDEX execution_log_entries_client_key_idx ON execution_log_entries (job_id, attempt, client_key) WHERE client_key IS NOT NULL`,
];

export const migration0006: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await statement.execute(db);
  },
};
