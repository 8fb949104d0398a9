import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { appliedMigrations, migrateToLatest, migrations, openDatabase } from '../src/index.js';
import { createBlankPostgresDatabase, describeEachBackend, itStandardServer } from '@sandfleet/test-helpers/db';

const SCHEMA_FILE = path.join(import.meta.dirname, '..', 'schema.sql');

/** pg_dump output without the lines that vary between runs and machines. */
function normaliseDump(dump: string): string {
  return dump
    .split('\n')
    .filter((line) => !/^(--|SET |SELECT pg_catalog\.set_config|\\restrict|\\unrestrict)/.test(line))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()
    .concat('\n');
}

describeEachBackend('migrations', (ctx) => {
  it('a migrated database reports every migration applied, and migrating again applies none', async () => {
    assert.deepEqual(await appliedMigrations(ctx.database), Object.keys(migrations));
    assert.deepEqual(await migrateToLatest(ctx.database), []);
    assert.deepEqual(await migrateToLatest(ctx.database), []);
  });

  it('migrates an empty database from scratch, once', { timeout: 60_000 }, async () => {
    // Postgres: a blank database; PGlite: an in-memory instance (a cold create, 3-10 s).
    const blank = ctx.backend === 'postgres' ? await createBlankPostgresDatabase() : undefined;
    const database = await openDatabase(blank?.config ?? { kind: 'pglite' });
    try {
      assert.deepEqual(await appliedMigrations(database), []);
      assert.deepEqual(await migrateToLatest(database), Object.keys(migrations));
      assert.deepEqual(await migrateToLatest(database), []);
      const tables = await sql<{ name: string }>`
        SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`.execute(database.db);
      assert.deepEqual(
        tables.rows.map((r) => r.name),
        ['admin_tokens', 'execution_log_chunks', 'execution_log_entries', 'executor_heartbeats', 'executor_secrets', 'job_attempts', 'job_tokens', 'jobs',
          'repositories', 'sandfleet_migration', 'sandfleet_migration_lock', 'ui_sessions'],
      );
    } finally {
      await database.close();
      await blank?.drop();
    }
  });

  // Habit: every schema change shows up as a reviewable diff of packages/db/schema.sql.
  // Regenerate with SANDFLEET_UPDATE_SCHEMA=1.
  itStandardServer(ctx, 'the schema matches the committed pg_dump snapshot (schema.sql)', async () => {
    const url = ctx.testDatabase.env.DATABASE_URL!;
    let dump: string;
    try {
      dump = (await promisify(execFile)('pg_dump', ['--schema-only', '--no-owner', '--no-privileges', url])).stdout;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return void console.log('# pg_dump not installed: snapshot not checked');
      throw err;
    }
    const actual = normaliseDump(dump);
    if (process.env.SANDFLEET_UPDATE_SCHEMA === '1') await fs.writeFile(SCHEMA_FILE, actual);
    const expected = await fs.readFile(SCHEMA_FILE, 'utf8').catch(() => '(missing: run with SANDFLEET_UPDATE_SCHEMA=1)');
    assert.equal(actual, expected, 'schema drifted from packages/db/schema.sql; rerun with SANDFLEET_UPDATE_SCHEMA=1 and review the diff');
  });
});
