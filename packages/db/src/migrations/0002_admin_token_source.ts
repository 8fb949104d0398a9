import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Admin tokens say where they came from (`env`: SANDFLEET_ADMIN_TOKEN, replaced when it changes;
 * `cli`: `sandfleet admin-tokens create`; `generated`: printed at first start) and when they were
 * last used. The env token of earlier versions was stored with this description.
 */
const statements = [
  sql`ALTER TABLE admin_tokens ADD COLUMN source text NOT NULL DEFAULT 'cli'
    CONSTRAINT admin_tokens_source_check CHECK (source IN ('env', 'cli', 'generated'))`,
  sql`ALTER TABLE admin_tokens ADD COLUMN last_used_at timestamptz`,
  sql`UPDATE admin_tokens SET source = 'env' WHERE description = 'SANDFLEET_ADMIN_TOKEN'`,
  sql`UPDATE admin_tokens SET source = 'generated' WHERE description = 'generated at first start'`,
];

export const migration0002: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await statement.execute(db);
  },
};
