import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Rotated executor shared secrets, stored as sha256 only. A row with `expires_at` NULL is a current
 * secret; one with a time is accepted until then (the grace period of a rotation) and refused after.
 * The site config's secret gets a row (source `config`) when a rotation retires it, so it stays
 * retired across restarts with the same config.
 *
 * UI sessions remember the admin token they were opened with: revoking the token ends them.
 */
const statements = [
  sql`CREATE TABLE executor_secrets (
    id bigserial PRIMARY KEY,
    value_sha256 bytea NOT NULL UNIQUE,
    source text NOT NULL CONSTRAINT executor_secrets_source_check CHECK (source IN ('config', 'rotated')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
  )`,
  sql`ALTER TABLE ui_sessions ADD COLUMN admin_token_id bigint REFERENCES admin_tokens (id) ON DELETE CASCADE`,
  sql`CREATE INDEX ui_sessions_admin_token_id_idx ON ui_sessions (admin_token_id)`,
];

export const migration0005: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await statement.execute(db);
  },
};
