import type { Kysely, Selectable } from 'kysely';
import type { RepositoriesTable, Schema } from './schema.js';

/** Repositories the git proxy may serve, by name (the job's repositoryName). */

type Db = Kysely<Schema>;

export interface Repository {
  name: string;
  /** Where the coordinator fetches it from (a URL or a local path). */
  source: string;
  createdAt: Date;
}

function toRepository(row: Selectable<RepositoriesTable>): Repository {
  return { name: row.name, source: row.source, createdAt: row.created_at };
}

/** Adds a repository, or changes the source of an existing one (created_at is kept). */
export async function addRepository(db: Db, input: { name: string; source: string }): Promise<Repository> {
  const row = await db
    .insertInto('repositories')
    .values({ name: input.name, source: input.source })
    .onConflict((oc) => oc.column('name').doUpdateSet({ source: input.source }))
    .returningAll()
    .executeTakeFirstOrThrow();
  return toRepository(row);
}

export async function getRepository(db: Db, name: string): Promise<Repository | undefined> {
  const row = await db.selectFrom('repositories').selectAll().where('name', '=', name).executeTakeFirst();
  return row ? toRepository(row) : undefined;
}

/** All repositories by name. */
export async function listRepositories(db: Db): Promise<Repository[]> {
  return (await db.selectFrom('repositories').selectAll().orderBy('name').execute()).map(toRepository);
}

/** True when the repository existed. */
export async function removeRepository(db: Db, name: string): Promise<boolean> {
  const result = await db.deleteFrom('repositories').where('name', '=', name).executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}
