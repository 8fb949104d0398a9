import client from 'prom-client';
import { queueSizes, type Database } from '@sandfleet/db';
import { QUEUE_NAMES } from '@sandfleet/protocol';

/**
 * `src_executor_queued_duration_seconds_total{queue}`: how long the oldest queued (or errored,
 * awaiting retry) job of each queue has waited, for alerts and Prometheus-based scalers (KEDA).
 */
export function registerQueueAgeGauge(registry: client.Registry, database: Database): void {
  new client.Gauge({
    name: 'src_executor_queued_duration_seconds_total',
    help: 'Seconds the oldest queued or errored job of the queue has waited.',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      const sizes = await queueSizes(database.db, QUEUE_NAMES);
      for (const queue of QUEUE_NAMES) this.set({ queue }, sizes[queue]!.oldestQueuedAgeSeconds);
    },
  });
}
