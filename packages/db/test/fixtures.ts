import { sql, type Kysely } from 'kysely';
import type { JobSpec, Schema } from '../src/index.js';

/** A minimal job spec; fields not given are the wire defaults. */
export function makeSpec(overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    repositoryName: 'github.com/sandfleet/example',
    repositoryDirectory: '',
    commit: 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef',
    fetchTags: false,
    shallowClone: true,
    sparseCheckout: null,
    files: null,
    dockerSteps: [{ image: 'alpine:3', commands: ['echo hi'], dir: '' }],
    cliSteps: null,
    redactedValues: null,
    dockerAuthConfig: null,
    ...overrides,
  };
}

/** Moves a job's last heartbeat into the past, as if its executor had gone silent. */
export async function backdateHeartbeat(db: Kysely<Schema>, jobId: number, ageMs: number): Promise<void> {
  await sql`UPDATE jobs SET last_heartbeat_at = now() - ${ageMs}::bigint * interval '1 millisecond' WHERE id = ${jobId}`.execute(db);
}

/** Moves a job's finished_at into the past (retry-after has elapsed). */
export async function backdateFinished(db: Kysely<Schema>, jobId: number, ageMs: number): Promise<void> {
  await sql`UPDATE jobs SET finished_at = now() - ${ageMs}::bigint * interval '1 millisecond' WHERE id = ${jobId}`.execute(db);
}

export async function countRows(db: Kysely<Schema>, table: keyof Schema): Promise<number> {
  const row = await db.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}
