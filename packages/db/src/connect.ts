import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { PGliteDialect } from 'kysely-pglite-dialect';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { Schema } from './schema.js';
import { createPgliteNotifier, createPostgresNotifier, type ClosableNotifier, type Notifier } from './notify.js';
import { lockDataDir } from './pglite-lock.js';
import { countingDialect } from './statement-tally.js';
import { preparingPool } from './prepared-statements.js';
import { coerceError } from './errors.js';

export type DbConfig =
  | {
      kind: 'postgres';
      /** `postgres://user:pass@host:port/db` */
      url: string;
      /** Pool size. Default 10. */
      maxConnections?: number;
    }
  | {
      kind: 'pglite';
      /** Data directory; `undefined` keeps the database in memory (lost on close). */
      dataDir?: string;
    };

export type BackendName = DbConfig['kind'];

/** What a backend can do. Code asks for capabilities, never for backend names. */
export interface BackendProfile {
  name: BackendName;
  /** `standard`: a PostgreSQL server; `embedded`: in this process. */
  kind: 'standard' | 'embedded';
  /** One connection serialises every query; transactions never run concurrently. */
  singleConnection: boolean;
  /** `connection`: LISTEN on its own server connection; `in-process`: callbacks from the embedded engine. */
  listen: 'connection' | 'in-process';
}

/** The single source of truth for backend differences (mirrored by test/helpers.ts skips). */
export const BACKENDS = {
  postgres: { name: 'postgres', kind: 'standard', singleConnection: false, listen: 'connection' },
  pglite: { name: 'pglite', kind: 'embedded', singleConnection: true, listen: 'in-process' },
} as const satisfies Record<BackendName, BackendProfile>;

export interface Database {
  db: Kysely<Schema>;
  backend: BackendProfile;
  notifier: Notifier;
  /** Closes the notifier and the pool or PGlite instance (an open PGlite keeps the process alive). Idempotent. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Background errors: idle pool clients, notifier reconnects, throwing listeners. Default: ignored. */
  onError?: (err: Error) => void;
}

const INT8_OID = 20;

/**
 * bigint columns (ids, count(*)) as JS numbers, as PGlite already returns them. Per pool, not
 * `pg.types.setTypeParser`, so other pg users in the process are unaffected. Ids stay far below 2^53.
 */
const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Opens the database the config names. Postgres: a pool plus a LISTEN connection, checked with a
 * query so a bad URL fails here. PGlite: locks the data dir, opens it (about 1 s for an existing
 * dir, 3-10 s to create one). Does not migrate: call `migrateToLatest`.
 */
export async function openDatabase(config: DbConfig, options: OpenOptions = {}): Promise<Database> {
  const onError = options.onError ?? (() => {});
  return config.kind === 'postgres' ? openPostgres(config, onError) : openPglite(config, onError);
}

async function openPostgres(config: Extract<DbConfig, { kind: 'postgres' }>, onError: (err: Error) => void): Promise<Database> {
  const pool = new pg.Pool({ connectionString: config.url, max: config.maxConnections ?? 10, types: pgTypes });
  // Without a listener an idle client's error (server restart) would crash the process.
  pool.on('error', (err) => onError(err));
  const db = new Kysely<Schema>({ dialect: countingDialect(new PostgresDialect({ pool: preparingPool(pool) })) });
  let notifier: ClosableNotifier;
  try {
    await sql`select 1`.execute(db);
    notifier = await createPostgresNotifier(config.url, onError);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw coerceError(err);
  }
  return withClose({ db, backend: BACKENDS.postgres, notifier }, async () => {
    await notifier.close();
    await db.destroy();
  });
}

async function openPglite(config: Extract<DbConfig, { kind: 'pglite' }>, onError: (err: Error) => void): Promise<Database> {
  const unlock = config.dataDir === undefined ? async () => {} : await lockDataDir(config.dataDir);
  let pglite: PGlite | undefined;
  try {
    const instance = config.dataDir === undefined ? await PGlite.create() : await PGlite.create({ dataDir: config.dataDir });
    pglite = instance;
    const notifier = await createPgliteNotifier(instance, onError);
    const db = new Kysely<Schema>({ dialect: countingDialect(new PGliteDialect(instance)) });
    return withClose({ db, backend: BACKENDS.pglite, notifier }, async () => {
      await notifier.close();
      await db.destroy();
      // Kysely destroys a driver only if a query initialised it; close PGlite ourselves or a
      // Database that was opened and closed unused would keep the process alive.
      if (!instance.closed) await instance.close();
      await unlock();
    });
  } catch (err) {
    await pglite?.close().catch(() => {});
    await unlock();
    throw coerceError(err);
  }
}


function withClose(parts: Omit<Database, 'close'>, closeOnce: () => Promise<void>): Database {
  let closing: Promise<void> | undefined;
  return { ...parts, close: () => (closing ??= closeOnce()) };
}
