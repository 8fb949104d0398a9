import { createHash, randomBytes } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';

/** A new secret: `bytes` random bytes as lowercase hex (20 bytes → 40 characters, as Sourcegraph's job tokens). */
export function newSecret(bytes = 20): string {
  return randomBytes(bytes).toString('hex');
}

/** sha256 of the secret's UTF-8 bytes, hex. Only this is stored, never the secret. */
export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * The stored form of a secret as a SQL bytea expression. Sent as hex text and decoded by the server
 * so both drivers pass it the same way (pg and PGlite serialise binary parameters differently).
 */
export function sha256Bytea(secret: string): RawBuilder<Uint8Array> {
  return sql<Uint8Array>`decode(${sha256Hex(secret)}, 'hex')`;
}
