import { sql, type Kysely } from 'kysely';
import { SandfleetError } from '@sandfleet/protocol';
import type { AdminTokenSource, Schema } from './schema.js';
import { newSecret, sha256Bytea } from './token-hash.js';

/**
 * Admin API tokens: only their sha256 is stored; the plaintext is shown once, at creation.
 * Each token records its source: `env` (SANDFLEET_ADMIN_TOKEN, authoritative: when the variable
 * changes, the previous env token is revoked), `cli` (`sandfleet admin-tokens create`) or
 * `generated` (printed at first start when no token was configured).
 */

type Db = Kysely<Schema>;

export type { AdminTokenSource };

export interface AdminTokenRecord {
  id: number;
  description: string;
  source: AdminTokenSource;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** Prefix that makes a leaked admin token recognisable (secret scanners, logs). */
export const ADMIN_TOKEN_PREFIX = 'sfa_';

/** Shortest admin token accepted: anything shorter is guessable enough to be refused. */
export const MIN_ADMIN_TOKEN_LENGTH = 20;

/** How stale last_used_at may get before a use writes it again (one write per token per minute). */
const LAST_USED_RESOLUTION = '1 minute';

/** An operator-chosen admin token shorter than MIN_ADMIN_TOKEN_LENGTH. */
export class AdminTokenTooShortError extends SandfleetError {
  constructor(length: number) {
    super(`admin token is too short (${length} characters): use at least ${MIN_ADMIN_TOKEN_LENGTH}, e.g. \`openssl rand -hex 32\``);
  }
}

/** Throws AdminTokenTooShortError for a token shorter than MIN_ADMIN_TOKEN_LENGTH. */
export function checkAdminTokenLength(token: string): void {
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) throw new AdminTokenTooShortError(token.length);
}

const RECORD_COLUMNS = ['id', 'description', 'source', 'created_at', 'last_used_at'] as const;

function toRecord(row: { id: number; description: string; source: AdminTokenSource; created_at: Date; last_used_at: Date | null }): AdminTokenRecord {
  return { id: Number(row.id), description: row.description, source: row.source, createdAt: row.created_at, lastUsedAt: row.last_used_at };
}

/**
 * Creates a token (`sfa_` + 32 random bytes hex), or stores the hash of `token` when the operator
 * chose one. Returns the plaintext, which cannot be recovered later.
 */
export async function createAdminToken(
  db: Db,
  input: { description: string; token?: string; source?: AdminTokenSource },
): Promise<{ token: string; record: AdminTokenRecord }> {
  if (input.token !== undefined) checkAdminTokenLength(input.token);
  const token = input.token ?? ADMIN_TOKEN_PREFIX + newSecret(32);
  const row = await db
    .insertInto('admin_tokens')
    .values({ value_sha256: sha256Bytea(token), description: input.description, source: input.source ?? 'cli' })
    .returning(RECORD_COLUMNS)
    .executeTakeFirstOrThrow();
  return { token, record: toRecord(row) };
}

/**
 * Makes `token` the one env token: stores it (source `env`) unless it is already a token, and
 * revokes every other env token, so a changed SANDFLEET_ADMIN_TOKEN stops the previous one.
 * Returns the number of env tokens revoked.
 */
export async function syncEnvAdminToken(db: Db, token: string): Promise<{ revoked: number }> {
  checkAdminTokenLength(token);
  const hash = sha256Bytea(token);
  return db.transaction().execute(async (tx) => {
    const revoked = await tx.deleteFrom('admin_tokens').where('source', '=', 'env').where('value_sha256', '!=', hash).executeTakeFirst();
    await tx
      .insertInto('admin_tokens')
      .values({ value_sha256: hash, description: 'SANDFLEET_ADMIN_TOKEN', source: 'env' })
      .onConflict((oc) => oc.column('value_sha256').doNothing())
      .execute();
    return { revoked: Number(revoked.numDeletedRows) };
  });
}

/**
 * The token's record if the presented plaintext is a live admin token, noting the use. Compared by
 * looking up its sha256 (a hash lookup: timing reveals nothing useful about the plaintext).
 */
export async function verifyAdminToken(db: Db, plaintext: string): Promise<AdminTokenRecord | undefined> {
  // One round trip: the lookup, and the last-used touch when it is stale (the API checks a token per request).
  const { rows } = await sql<{ id: number; description: string; source: AdminTokenSource; created_at: Date; last_used_at: Date | null }>`
    WITH found AS (
      SELECT id, description, source, created_at, last_used_at FROM admin_tokens WHERE value_sha256 = ${sha256Bytea(plaintext)}
    ),
    touched AS (
      UPDATE admin_tokens SET last_used_at = now()
      WHERE id IN (SELECT id FROM found)
        AND (last_used_at IS NULL OR last_used_at < now() - ${sql.lit(LAST_USED_RESOLUTION)}::interval)
      RETURNING id, description, source, created_at, last_used_at
    )
    SELECT * FROM touched
    UNION ALL
    SELECT * FROM found WHERE NOT EXISTS (SELECT 1 FROM touched)
  `.execute(db);
  const row = rows[0];
  return row ? toRecord(row) : undefined;
}

/** Every admin token's record (never the secret), oldest first. */
export async function listAdminTokens(db: Db): Promise<AdminTokenRecord[]> {
  const rows = await db.selectFrom('admin_tokens').select(RECORD_COLUMNS).orderBy('id').execute();
  return rows.map(toRecord);
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
