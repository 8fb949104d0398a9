import { SandfleetError } from '@sandfleet/protocol';

/**
 * PostgreSQL SQLSTATE codes this package names. Both backends report the same codes: PGlite is
 * PostgreSQL compiled to WASM.
 */
export const SQLSTATE = {
  UNIQUE_VIOLATION: '23505',
  FOREIGN_KEY_VIOLATION: '23503',
  CHECK_VIOLATION: '23514',
  UNDEFINED_TABLE: '42P01',
  DUPLICATE_DATABASE: '42P04',
  INVALID_CATALOG_NAME: '3D000',
  OBJECT_IN_USE: '55006',
  ADMIN_SHUTDOWN: '57P01',
} as const;

/** The SQLSTATE of a driver error (`pg` and PGlite both put it on `.code`), if there is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Normalises anything thrown into an Error, keeping the original as `cause`. */
export function coerceError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(typeof err === 'string' ? err : `non-error thrown: ${String(err)}`, { cause: err });
}

/** `migrateToLatest` failed; `migrationName` is the migration that broke, when Kysely knows it. */
export class MigrationError extends SandfleetError {
  constructor(
    message: string,
    readonly migrationName: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
