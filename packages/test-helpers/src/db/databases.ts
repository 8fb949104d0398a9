/**
 * Test databases for both backends. Configured from the environment (the db library itself never
 * reads it):
 *
 * - `SANDFLEET_TEST_BACKENDS`: comma list, default `postgres,pglite`.
 * - `SANDFLEET_TEST_PG_URL`: an admin URL, default `postgres://postgres@127.0.0.1:5432/test`.
 * - `SANDFLEET_TEST_KEEP_DB=1`: keep every test database (their names/paths are printed).
 *
 * Postgres: one migrated template database per migration set, then `CREATE DATABASE … TEMPLATE`
 * (~70 ms). PGlite: a cold create costs 3-10 s, so one migrated template data dir is built once
 * under os.tmpdir() and copied for each test database (~1 s copy + ~1 s open).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { migrateToLatest, migrations, openDatabase, PGLITE_LOCK_FILE, tryPidFileLock, type BackendName, type DbConfig } from '@sandfleet/db';

const ALL_BACKENDS: readonly BackendName[] = ['postgres', 'pglite'];

/** The backends to run against, from SANDFLEET_TEST_BACKENDS (default both). */
export function testBackends(): BackendName[] {
  const raw = process.env.SANDFLEET_TEST_BACKENDS ?? ALL_BACKENDS.join(',');
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!ALL_BACKENDS.includes(name as BackendName)) throw new Error(`SANDFLEET_TEST_BACKENDS: unknown backend "${name}"`);
  }
  return names as BackendName[];
}

export function testPostgresAdminUrl(): string {
  return process.env.SANDFLEET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
}

const keepDatabases = process.env.SANDFLEET_TEST_KEEP_DB === '1';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.resolve('@sandfleet/db'))), 'migrations');

/**
 * Identifies the migration set: the migration names plus the source of every file in
 * src/migrations, so editing a migration during development builds a new template instead of
 * reusing a stale one.
 */
export function migrationSetHash(): string {
  const hash = createHash('sha256');
  hash.update(Object.keys(migrations).join('\n'));
  for (const file of readdirSync(MIGRATIONS_DIR).sort()) hash.update(`\n${file}\n${readFileSync(path.join(MIGRATIONS_DIR, file))}`);
  return hash.digest('hex').slice(0, 12);
}

export interface TestDatabase {
  config: DbConfig;
  /** For a child process (a coordinator under test): DATABASE_URL or SANDFLEET_PGLITE_DIR. */
  env: Record<string, string>;
  /** PGlite only: the copied data directory. */
  dataDir?: string;
  /** Drops the database / deletes the data dir. Close every Database on it first. */
  drop(): Promise<void>;
}

/** A fresh, migrated, empty database of the given backend. */
export async function createTestDatabase(kind: BackendName): Promise<TestDatabase> {
  return kind === 'postgres' ? createPostgresTestDatabase() : createPgliteTestDatabase();
}

// ---------------------------------------------------------------- postgres

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  // Short-lived on purpose: an open client would keep the test process alive after its last test.
  const client = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Serialises template builds of parallel test processes (any constant unlikely to clash). */
const TEMPLATE_LOCK_KEY = 7_356_120_001;
let postgresTemplate: Promise<string> | undefined;

function ensurePostgresTemplate(): Promise<string> {
  return (postgresTemplate ??= withAdminClient(async (client) => {
    const template = `sandfleet_tpl_${migrationSetHash()}`;
    await client.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY]);
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (rowCount === 0) {
        // Built under another name and renamed when complete: a crash never leaves a half template.
        const building = `${template}_build`;
        await client.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`);
        await client.query(`CREATE DATABASE ${building}`);
        const database = await openDatabase({ kind: 'postgres', url: withDatabase(testPostgresAdminUrl(), building) });
        try {
          await migrateToLatest(database);
        } finally {
          await database.close();
        }
        await client.query(`ALTER DATABASE ${building} RENAME TO ${template}`);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY]);
    }
    return template;
  }));
}

async function createPostgresTestDatabase(): Promise<TestDatabase> {
  const template = await ensurePostgresTemplate();
  const name = `sandfleet_t_${randomBytes(6).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name} TEMPLATE ${template}`));
  const url = withDatabase(testPostgresAdminUrl(), name);
  return {
    config: { kind: 'postgres', url },
    env: { DATABASE_URL: url },
    async drop() {
      if (keepDatabases) return console.log(`# kept test database ${url}`);
      await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** An empty (unmigrated) Postgres database, for migration tests. */
export async function createBlankPostgresDatabase(): Promise<TestDatabase> {
  const name = `sandfleet_blank_${randomBytes(6).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name}`));
  const url = withDatabase(testPostgresAdminUrl(), name);
  return {
    config: { kind: 'postgres', url },
    env: { DATABASE_URL: url },
    async drop() {
      await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

// ---------------------------------------------------------------- pglite

const READY_MARKER = 'sandfleet-template-ready';
let pgliteTemplate: Promise<string> | undefined;

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** A lock file beside the template dir; a lock whose owner died is taken over. */
async function withFileLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  let lock = await tryPidFileLock(lockPath);
  while ('heldBy' in lock) {
    // Another test process is building the template (seconds); wait for its lock to go.
    await new Promise((resolve) => setTimeout(resolve, 100));
    lock = await tryPidFileLock(lockPath);
  }
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

function ensurePgliteTemplate(): Promise<string> {
  return (pgliteTemplate ??= (async () => {
    const dir = path.join(os.tmpdir(), `sandfleet-pglite-template-${migrationSetHash()}`);
    if (await exists(path.join(dir, READY_MARKER))) return dir;
    await withFileLock(`${dir}.lock`, async () => {
      if (await exists(path.join(dir, READY_MARKER))) return;
      await fs.rm(dir, { recursive: true, force: true }); // an incomplete leftover
      const building = `${dir}.build-${process.pid}`;
      await fs.rm(building, { recursive: true, force: true });
      const database = await openDatabase({ kind: 'pglite', dataDir: building });
      try {
        await migrateToLatest(database);
      } finally {
        await database.close();
      }
      await fs.writeFile(path.join(building, READY_MARKER), new Date().toISOString());
      await fs.rename(building, dir);
    });
    return dir;
  })());
}

async function createPgliteTestDatabase(): Promise<TestDatabase> {
  const template = await ensurePgliteTemplate();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-pglite-test-'));
  await fs.cp(template, dataDir, {
    recursive: true,
    filter: (src) => ![READY_MARKER, PGLITE_LOCK_FILE].includes(path.basename(src)),
  });
  return {
    config: { kind: 'pglite', dataDir },
    env: { SANDFLEET_PGLITE_DIR: dataDir },
    dataDir,
    async drop() {
      if (keepDatabases) return console.log(`# kept test data dir ${dataDir}`);
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
