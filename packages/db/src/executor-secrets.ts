import { createHash, timingSafeEqual } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { ExecutorSecretSource, Schema } from './schema.js';
import { newSecret, sha256Bytea, sha256Hex } from './token-hash.js';
import { msInterval } from './sql-values.js';

/**
 * Executors' shared secret beyond the site config's `executors.accessToken`: a rotation makes a new
 * secret (shown once, stored as sha256) and gives every secret accepted so far a grace period, after
 * which it is refused. A presented secret is accepted when
 * - it matches a stored secret that has not expired, or
 * - it is the config's secret and no stored row has retired it.
 * The config's secret is recorded (by hash) when a rotation retires it, so restarting with the same
 * config does not bring it back; a different config secret is a new operator decision and accepted.
 */

type Db = Kysely<Schema>;

export type { ExecutorSecretSource };

/** Prefix that makes a leaked executor secret recognisable. */
export const EXECUTOR_SECRET_PREFIX = 'sfe_';

export interface ExecutorSecretRecord {
  id: number;
  source: ExecutorSecretSource;
  /** First 12 hex digits of the secret's sha256: enough to tell secrets apart, useless to guess one. */
  fingerprint: string;
  createdAt: Date;
  /** null: current. Otherwise accepted until then. */
  expiresAt: Date | null;
}

/** The fingerprint shown for a secret (the config's one is shown this way too, never in full). */
export function secretFingerprint(secret: string): string {
  return sha256Hex(secret).slice(0, 12);
}

const COLUMNS = ['id', 'source', 'value_sha256', 'created_at', 'expires_at'] as const;

function toRecord(row: { id: number; source: ExecutorSecretSource; value_sha256: Uint8Array; created_at: Date; expires_at: Date | null }): ExecutorSecretRecord {
  return {
    id: Number(row.id),
    source: row.source,
    fingerprint: Buffer.from(row.value_sha256).toString('hex').slice(0, 12),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

/**
 * Makes a new current secret; every secret accepted until now (earlier rotated ones and the config's)
 * stays accepted for at most `graceMs` more. Returns the plaintext, which cannot be recovered later.
 */
export async function rotateExecutorSecret(
  db: Db,
  input: { configSecret: string | undefined; graceMs: number },
): Promise<{ secret: string; record: ExecutorSecretRecord; previousAcceptedUntil: Date }> {
  const secret = EXECUTOR_SECRET_PREFIX + newSecret(32);
  const until = sql<Date>`now() + ${msInterval(input.graceMs)}`;
  return db.transaction().execute(async (tx) => {
    await tx
      .updateTable('executor_secrets')
      .set({ expires_at: until })
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', until)]))
      .execute();
    if (input.configSecret !== undefined) {
      await tx
        .insertInto('executor_secrets')
        .values({ value_sha256: sha256Bytea(input.configSecret), source: 'config', expires_at: until })
        .onConflict((oc) => oc.column('value_sha256').doUpdateSet({ expires_at: sql`LEAST(executor_secrets.expires_at, excluded.expires_at)` }))
        .execute();
    }
    const row = await tx.insertInto('executor_secrets').values({ value_sha256: sha256Bytea(secret), source: 'rotated' }).returning(COLUMNS).executeTakeFirstOrThrow();
    const { previous } = await sql<{ previous: Date }>`SELECT ${until} AS previous`.execute(tx).then((r) => r.rows[0]!);
    return { secret, record: toRecord(row), previousAcceptedUntil: previous };
  });
}

/** Whether a presented secret is accepted and, if so, until when (null: until a rotation retires it). */
export type ExecutorSecretAcceptance = { accepted: false } | { accepted: true; expiresAt: Date | null };

/**
 * Whether `presented` is an accepted executor secret, and its expiry. The hash is compared with every
 * candidate in constant time (no early exit), and the config's secret by its sha256 the same way.
 */
export async function executorSecretAcceptance(db: Db, presented: string, configSecret: string | undefined): Promise<ExecutorSecretAcceptance> {
  const rows = await db
    .selectFrom('executor_secrets')
    .select(['value_sha256', 'expires_at', sql<boolean>`expires_at IS NULL OR expires_at > now()`.as('live')])
    .where((eb) => eb.or([eb('source', '=', 'config'), eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .execute();
  const hash = createHash('sha256').update(presented, 'utf8').digest();
  let live: { expiresAt: Date | null } | undefined;
  let matchedRetired = false;
  for (const row of rows) {
    const same = timingSafeEqual(hash, Buffer.from(row.value_sha256));
    if (same && row.live) live = { expiresAt: row.expires_at };
    matchedRetired ||= same && !row.live;
  }
  if (live) return { accepted: true, ...live };
  if (matchedRetired || configSecret === undefined) return { accepted: false };
  return timingSafeEqual(hash, createHash('sha256').update(configSecret, 'utf8').digest()) ? { accepted: true, expiresAt: null } : { accepted: false };
}

/** Whether `presented` is an accepted executor secret (see executorSecretAcceptance). */
export async function isAcceptedExecutorSecret(db: Db, presented: string, configSecret: string | undefined): Promise<boolean> {
  return (await executorSecretAcceptance(db, presented, configSecret)).accepted;
}

/** Stored secrets, newest first: current ones, those in their grace period, and retired config secrets. */
export async function listExecutorSecrets(db: Db): Promise<ExecutorSecretRecord[]> {
  const rows = await db.selectFrom('executor_secrets').select(COLUMNS).orderBy('id', 'desc').execute();
  return rows.map(toRecord);
}

/** When the config's secret stops (or stopped) being accepted; undefined while it is current. */
export async function configSecretExpiry(db: Db, configSecret: string): Promise<Date | undefined> {
  const row = await db.selectFrom('executor_secrets').select('expires_at').where('value_sha256', '=', sha256Bytea(configSecret)).executeTakeFirst();
  return row?.expires_at ?? undefined;
}

/** Forgets rotated secrets that expired over `keepMs` ago (config rows stay: they keep it retired). */
export async function deleteExpiredExecutorSecrets(db: Db, keepMs: number): Promise<number> {
  const result = await db
    .deleteFrom('executor_secrets')
    .where('source', '=', 'rotated')
    .where('expires_at', '<', sql<Date>`now() - ${msInterval(keepMs)}`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
