import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';
import { newSecret, sha256Bytea } from './token-hash.js';
import { msInterval } from './sql-values.js';

/** Web UI sessions: the cookie value is shown to the browser once; only its sha256 is stored. */

type Db = Kysely<Schema>;

export interface UiSession {
  id: number;
  /** Sent in every form; a POST without it is refused. */
  csrfToken: string;
  expiresAt: Date;
  /** The admin token signed in with (revoking it ends the session); null for older sessions. */
  adminTokenId: number | null;
}

const COLUMNS = ['id', 'csrf_token', 'expires_at', 'admin_token_id'] as const;

function toSession(row: { id: number; csrf_token: string; expires_at: Date; admin_token_id: number | null }): UiSession {
  return { id: Number(row.id), csrfToken: row.csrf_token, expiresAt: row.expires_at, adminTokenId: row.admin_token_id === null ? null : Number(row.admin_token_id) };
}

/**
 * Opens a session valid for `ttlMs`, tied to the admin token that signed in. Returns the cookie value
 * (plaintext, not recoverable later).
 */
export async function createUiSession(db: Db, ttlMs: number, adminTokenId: number | null = null): Promise<{ cookieValue: string; session: UiSession }> {
  const cookieValue = newSecret(32);
  const row = await db
    .insertInto('ui_sessions')
    .values({ value_sha256: sha256Bytea(cookieValue), csrf_token: newSecret(24), expires_at: sql<Date>`now() + ${msInterval(ttlMs)}`, admin_token_id: adminTokenId })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { cookieValue, session: toSession(row) };
}

/** The live (unexpired) session for a cookie value, if any. */
export async function findUiSession(db: Db, cookieValue: string): Promise<UiSession | undefined> {
  const row = await db
    .selectFrom('ui_sessions')
    .select(COLUMNS)
    .where('value_sha256', '=', sha256Bytea(cookieValue))
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return row ? toSession(row) : undefined;
}

/** Sign-out: the session stops working at once. True when it existed. */
export async function deleteUiSession(db: Db, cookieValue: string): Promise<boolean> {
  const result = await db.deleteFrom('ui_sessions').where('value_sha256', '=', sha256Bytea(cookieValue)).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

/** Removes expired sessions (the janitor's job). Returns how many. */
export async function deleteExpiredUiSessions(db: Db): Promise<number> {
  const result = await db.deleteFrom('ui_sessions').where('expires_at', '<=', sql<Date>`now()`).executeTakeFirst();
  return Number(result.numDeletedRows);
}
