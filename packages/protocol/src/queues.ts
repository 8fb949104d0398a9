import { z } from 'zod';

/**
 * The queues every coordinator serves and every executor may name. A list, so that a queue is
 * declared once here and every check, route pattern and filter follows.
 */
export const QUEUE_NAMES = ['batches', 'codeintel'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** A queue name in a request body or query string. */
export const QueueNameSchema = z.enum(QUEUE_NAMES);

/** How error messages list the queues: `batches, codeintel`. */
export const QUEUE_NAME_LIST = QUEUE_NAMES.join(', ');

export function isQueueName(value: string): value is QueueName {
  return (QUEUE_NAMES as readonly string[]).includes(value);
}

/** The names that are not queues, in the order given; empty when all are valid. */
export function unknownQueueNames(names: readonly string[]): string[] {
  return names.filter((name) => !isQueueName(name));
}

/** Sorted names joined by `_`, the label Sourcegraph uses for multi-queue metrics. */
export function formatQueueNamesForMetrics(queues: readonly string[]): string {
  return [...queues].sort().join('_');
}
