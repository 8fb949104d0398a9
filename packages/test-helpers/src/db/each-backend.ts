import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { BACKENDS, openDatabase, type BackendName, type BackendProfile, type Database, type Schema } from '@sandfleet/db';
import { createTestDatabase, testBackends, type TestDatabase } from './databases.js';

export interface BackendTestContext {
  readonly backend: BackendName;
  readonly profile: BackendProfile;
  /** The current test's database: fresh, migrated, empty; closed and dropped after the test. */
  readonly database: Database;
  readonly db: Kysely<Schema>;
  readonly testDatabase: TestDatabase;
  /** Another Database on the same test database (a second coordinator). Must be closed by the test. */
  openAnother(): Promise<Database>;
}

/**
 * How each backend isolates tests. Measured on the 2-core dev machine:
 * - postgres: `CREATE DATABASE … TEMPLATE` ~70 ms, so every test gets its own database.
 * - pglite: copying the 39 MB template dir (~1 s) plus opening it (~1 s) per test would dominate
 *   the suite, so each test file (process) opens one copy, shared by its suites, and every test
 *   starts with all tables truncated (`TRUNCATE … RESTART IDENTITY`, a few ms): the same empty
 *   state, ids from 1 again.
 */
const DATABASE_PER_TEST: Record<BackendName, boolean> = { postgres: true, pglite: false };

interface OpenTestDatabase {
  database: Database;
  testDatabase: TestDatabase;
}

async function openTestDatabase(backend: BackendName): Promise<OpenTestDatabase> {
  const testDatabase = await createTestDatabase(backend);
  return { testDatabase, database: await openDatabase(testDatabase.config) };
}

async function closeTestDatabase(state: OpenTestDatabase): Promise<void> {
  await state.database.close();
  await state.testDatabase.drop();
}

/**
 * The per-file database of a shared backend. Suites are counted when declared (before any runs),
 * so the last suite to finish closes it and the test process can exit.
 */
const sharedDatabases = new Map<BackendName, { users: number; opened?: Promise<OpenTestDatabase> }>();

/** Empties every table of ours and restarts their sequences (ids count from 1 again). */
export async function truncateAllTables(db: Kysely<Schema>): Promise<void> {
  const { rows } = await sql<{ name: string }>`
    SELECT quote_ident(tablename) AS name FROM pg_tables
    WHERE schemaname = current_schema() AND tablename NOT LIKE 'sandfleet_migration%'
  `.execute(db);
  await sql`TRUNCATE ${sql.raw(rows.map((r) => r.name).join(', '))} RESTART IDENTITY CASCADE`.execute(db);
}

/**
 * Declares `name [backend]` suites, one per test backend; `fn` declares the tests with `it` and
 * reads the database from the context inside them. Every test starts with a migrated, empty
 * database (see DATABASE_PER_TEST). Fails a test that leaves an extra Database open (an open
 * PGlite keeps the process alive). Tests must not close `ctx.database` itself.
 */
export function describeEachBackend(name: string, fn: (ctx: BackendTestContext) => void): void {
  for (const backend of testBackends()) {
    describe(`${name} [${backend}]`, () => {
      const perTest = DATABASE_PER_TEST[backend];
      let shared: OpenTestDatabase | undefined;
      let current: (OpenTestDatabase & { extra: Database[] }) | undefined;
      const need = () => {
        if (!current) throw new Error('the test database exists only while a test runs');
        return current;
      };
      const ctx: BackendTestContext = {
        backend,
        profile: BACKENDS[backend],
        get database() {
          return need().database;
        },
        get db() {
          return need().database.db;
        },
        get testDatabase() {
          return need().testDatabase;
        },
        async openAnother() {
          const state = need();
          const database = await openDatabase(state.testDatabase.config);
          const closeAnother = database.close;
          state.extra.push(database);
          return {
            ...database,
            close: async () => {
              state.extra = state.extra.filter((d) => d !== database);
              await closeAnother();
            },
          };
        },
      };
      if (!perTest) {
        const entry = sharedDatabases.get(backend) ?? { users: 0 };
        sharedDatabases.set(backend, entry);
        entry.users++;
        before(async () => {
          shared = await (entry.opened ??= openTestDatabase(backend));
        });
        after(async () => {
          if (--entry.users === 0 && entry.opened) await closeTestDatabase(await entry.opened);
        });
      }
      beforeEach(async () => {
        if (perTest) {
          current = { ...(await openTestDatabase(backend)), extra: [] };
        } else {
          await truncateAllTables(shared!.database.db);
          current = { ...shared!, extra: [] };
        }
      });
      afterEach(async () => {
        const state = current;
        current = undefined;
        if (!state) return;
        const leaked = state.extra.length;
        await Promise.all(state.extra.map((d) => d.close()));
        if (perTest) await closeTestDatabase(state);
        if (leaked > 0) throw new Error(`test left ${leaked} extra Database(s) open`);
      });
      fn(ctx);
    });
  }
}

type TestFn = () => Promise<void>;

/** Tests whose failure mode is a hang (a lock wait, a lost notification) fail after this instead; generous, as opening PGlite twice takes seconds on a loaded machine. */
export const HANG_TIMEOUT_MS = 60_000;

/** A test that needs two connections at once. Skipped where one connection serialises everything. */
export function itMultiConnection(ctx: BackendTestContext, name: string, fn: TestFn): void {
  const skip = ctx.profile.singleConnection ? `${ctx.backend} has a single connection: a second one would wait for the first's transaction` : false;
  it(name, { skip, timeout: HANG_TIMEOUT_MS }, fn);
}

/** A test that needs a PostgreSQL server process (pg_dump, killable backend connections). */
export function itStandardServer(ctx: BackendTestContext, name: string, fn: TestFn): void {
  const skip = ctx.profile.kind !== 'standard' ? `${ctx.backend} runs in-process: there is no server to dump or connection to kill` : false;
  it(name, { skip, timeout: HANG_TIMEOUT_MS }, fn);
}

/** A test of the embedded backend's own behaviour (its data directory). */
export function itEmbedded(ctx: BackendTestContext, name: string, fn: TestFn): void {
  const skip = ctx.profile.kind !== 'embedded' ? `${ctx.backend} has no data directory of ours` : false;
  it(name, { skip, timeout: HANG_TIMEOUT_MS }, fn);
}
