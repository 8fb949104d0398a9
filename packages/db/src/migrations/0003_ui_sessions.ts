import { sql, type Kysely, type Migration } from 'kysely';

/** Web UI sign-in sessions: only the cookie's sha256 is stored; a stolen table cannot sign anyone in. */
const statements = [
  sql`CREATE TABLE ui_sessions (
    id bigserial PRIMARY KEY,
    value_sha256 bytea NOT NULL UNIQUE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
  )`,
  sql`CREATE INDEX ui_sessions_expires_at_idx ON ui_sessions (expires_at)`,
];

export const migration0003: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await statement.execute(db);
  },
};
