import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { PostgresPool, PostgresPoolClient } from 'kysely';

/**
 * Marks a hot statement (the dequeue, the final marks, the job-token lookup) to be sent as a named
 * prepared statement on PostgreSQL: each pooled connection parses and plans it once instead of on
 * every call. Only marked statements are named: a name per distinct text, so texts that vary
 * (IN lists of any length) must not carry the mark. PGlite ignores it (it is an SQL comment).
 */
export const PREPARED = '/* prepared */';

/** `pool` as Kysely's PostgresDialect takes it, sending statements that carry PREPARED by name. */
export function preparingPool(pool: pg.Pool): PostgresPool {
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (name === undefined) names.set(text, (name = `sandfleet_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`));
    return name;
  };
  const wrap = (client: pg.PoolClient): PostgresPoolClient => ({
    query: ((textOrCursor: unknown, parameters?: ReadonlyArray<unknown>) => {
      if (typeof textOrCursor === 'string' && textOrCursor.includes(PREPARED)) {
        return client.query({ name: nameOf(textOrCursor), text: textOrCursor, values: [...(parameters ?? [])] });
      }
      return (client.query as (...args: unknown[]) => unknown)(textOrCursor, parameters && [...parameters]);
    }) as PostgresPoolClient['query'],
    release: (destroy?: boolean) => client.release(destroy),
  });
  return {
    async connect() {
      const client = await pool.connect();
      let entry = wrapped.get(client);
      if (!entry) wrapped.set(client, (entry = wrap(client)));
      return entry;
    },
    end: () => pool.end(),
  };
}
