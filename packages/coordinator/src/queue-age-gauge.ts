import client from 'prom-client';
import { queueSizes, type Database } from '@sandfleet/db';

/**
 * `src_executor_queued_duration_seconds_total{queue}`: how long the oldest queued (or errored,
 * awaiting retry) job of each queue has waited, for alerts and Prometheus-based scalers (KEDA).
 */
export function registerQueueAgeGauge(registry: client.Registry, database: Database, queueNames: readonly string[]): void {
  new client.Gauge({
    name: 'src_executor_queued_duration_seconds_total',
    help: 'Seconds the oldest queued or errored job of the queue has waited.',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      const sizes = await queueSizes(database.db, queueNames);
      for (const queue of queueNames) this.set({ queue }, sizes[queue]!.oldestQueuedAgeSeconds);
    },
  });
}
