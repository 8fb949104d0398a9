import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';
import { msInterval } from './sql-values.js';

/** Figures for the Queues page: how long jobs wait, beyond the counts per state. */

type Db = Kysely<Schema>;

export interface QueueWaitStats {
  queue: string;
  /** Age in ms of the oldest queued job, now; null when none is queued. */
  oldestQueuedMs: number | null;
  /** Jobs dequeued within the window. */
  pickedUp: number;
  /** Pickup latency (dequeue time − queued time of that attempt) percentiles in ms; null without pickups. */
  pickupP50Ms: number | null;
  pickupP95Ms: number | null;
}

/**
 * Per queue: the oldest queued job's age, and pickup latency percentiles over jobs dequeued within
 * `windowMs`. A requeue resets queued_at, so the latency is per attempt.
 */
export async function queueWaitStats(db: Db, windowMs: number): Promise<Record<string, QueueWaitStats>> {
  const ms = (expr: ReturnType<typeof sql>) => sql<number | null>`(EXTRACT(EPOCH FROM ${expr}) * 1000)::float8`;
  const [oldest, pickup] = await Promise.all([
    db
      .selectFrom('jobs')
      .select(['queue', ms(sql`now() - min(queued_at)`).as('oldest_ms')])
      .where('state', '=', 'queued')
      .groupBy('queue')
      .execute(),
    db
      .selectFrom('jobs')
      .select([
        'queue',
        sql<number>`count(*)`.as('picked_up'),
        ms(sql`percentile_cont(0.5) WITHIN GROUP (ORDER BY started_at - queued_at)`).as('p50_ms'),
        ms(sql`percentile_cont(0.95) WITHIN GROUP (ORDER BY started_at - queued_at)`).as('p95_ms'),
      ])
      .where('started_at', 'is not', null)
      .where('started_at', '>', sql<Date>`now() - ${msInterval(windowMs)}`)
      .groupBy('queue')
      .execute(),
  ]);
  const stats: Record<string, QueueWaitStats> = {};
  const entry = (queue: string) => (stats[queue] ??= { queue, oldestQueuedMs: null, pickedUp: 0, pickupP50Ms: null, pickupP95Ms: null });
  for (const row of oldest) entry(row.queue).oldestQueuedMs = toNumber(row.oldest_ms);
  for (const row of pickup) {
    const s = entry(row.queue);
    s.pickedUp = Number(row.picked_up);
    s.pickupP50Ms = toNumber(row.p50_ms);
    s.pickupP95Ms = toNumber(row.p95_ms);
  }
  return stats;
}

function toNumber(value: number | string | null): number | null {
  return value === null ? null : Math.max(0, Number(value));
}
