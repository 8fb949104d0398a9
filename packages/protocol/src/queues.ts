/** The queues every coordinator serves and every executor may name (reference §2.1, §6). */
export const QUEUE_NAMES = ['batches', 'codeintel'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export function isQueueName(value: string): value is QueueName {
  return (QUEUE_NAMES as readonly string[]).includes(value);
}

/** Sorted names joined by `_`, the label Sourcegraph uses for multi-queue metrics (reference §11.3). */
export function formatQueueNamesForMetrics(queues: readonly string[]): string {
  return [...queues].sort().join('_');
}
