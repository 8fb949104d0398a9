import { Migrator } from 'kysely';
import type { Database } from './connect.js';
import { MigrationError } from './errors.js';
import { migrations } from './migrations/index.js';

export const MIGRATION_TABLE = 'sandfleet_migration';
export const MIGRATION_LOCK_TABLE = 'sandfleet_migration_lock';

function makeMigrator(database: Database): Migrator {
  return new Migrator({
    db: database.db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
}

/**
 * Applies every pending migration in one transaction; Kysely's migration lock (an advisory lock on
 * Postgres) lets several coordinators start at once. Returns the names applied now (empty when up to
 * date). Throws MigrationError naming the failed migration; nothing of the batch is applied then.
 */
export async function migrateToLatest(database: Database): Promise<string[]> {
  const { error, results = [] } = await makeMigrator(database).migrateToLatest();
  const applied = results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
  if (error !== undefined) {
    const failed = results.find((r) => r.status === 'Error')?.migrationName;
    const cause = error instanceof Error ? error.message : String(error);
    throw new MigrationError(
      `database migration ${failed ?? '(before any migration ran)'} failed on ${database.backend.name}: ${cause}`,
      failed,
      { cause: error },
    );
  }
  return applied;
}

/** Names of the migrations the database has applied, oldest first. */
export async function appliedMigrations(database: Database): Promise<string[]> {
  const all = await makeMigrator(database).getMigrations();
  return all.filter((m) => m.executedAt !== undefined).map((m) => m.name);
}
