import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';
import { newSecret, sha256Bytea } from './token-hash.js';

/** Admin API tokens: only their sha256 is stored; the plaintext is shown once, at creation. */

type Db = Kysely<Schema>;

export interface AdminTokenRecord {
  id: number;
  description: string;
  createdAt: Date;
}

/** Prefix that makes a leaked admin token recognisable (secret scanners, logs). */
export const ADMIN_TOKEN_PREFIX = 'sfa_';

/**
 * Creates a token (`sfa_` + 32 random bytes hex), or stores the hash of `token` when the operator
 * chose one (SANDFLEET_ADMIN_TOKEN). Returns the plaintext, which cannot be recovered later.
 */
export async function createAdminToken(
  db: Db,
  input: { description: string; token?: string },
): Promise<{ token: string; record: AdminTokenRecord }> {
  const token = input.token ?? ADMIN_TOKEN_PREFIX + newSecret(32);
  const row = await db
    .insertInto('admin_tokens')
    .values({ value_sha256: sha256Bytea(token), description: input.description })
    .returning(['id', 'description', 'created_at'])
    .executeTakeFirstOrThrow();
  return { token, record: { id: row.id, description: row.description, createdAt: row.created_at } };
}

/**
 * The token's record if the presented plaintext is a live admin token. Compared by looking up its
 * sha256 (a hash lookup: timing reveals nothing useful about the plaintext).
 */
export async function verifyAdminToken(db: Db, plaintext: string): Promise<AdminTokenRecord | undefined> {
  const row = await db
    .selectFrom('admin_tokens')
    .select(['id', 'description', 'created_at'])
    .where('value_sha256', '=', sha256Bytea(plaintext))
    .executeTakeFirst();
  return row ? { id: row.id, description: row.description, createdAt: row.created_at } : undefined;
}

/** Every admin token's record (never the secret), oldest first. */
export async function listAdminTokens(db: Db): Promise<AdminTokenRecord[]> {
  const rows = await db.selectFrom('admin_tokens').select(['id', 'description', 'created_at']).orderBy('id').execute();
  return rows.map((row) => ({ id: row.id, description: row.description, createdAt: row.created_at }));
}

/** Revokes a token. True when it existed. */
export async function deleteAdminToken(db: Db, id: number): Promise<boolean> {
  const result = await db.deleteFrom('admin_tokens').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

/** Number of admin tokens (0 means first-run setup is still open). */
export async function countAdminTokens(db: Db): Promise<number> {
  const row = await db.selectFrom('admin_tokens').select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}
