import { z } from 'zod';

/**
 * The queues every coordinator serves. A coordinator may declare more in its site config; the set
 * a coordinator serves is its queue catalog, built once at start-up.
 */
export const BUILTIN_QUEUE_NAMES = ['batches', 'codeintel'] as const;

/**
 * What a queue name may look like: lowercase letters, digits, `-` and `_`, starting with a letter
 * or digit — safe in a URL path, a route pattern, a metric label and an environment variable list.
 */
export const QUEUE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const QUEUE_NAME_RULE = "lowercase letters, digits, '-' and '_' (at most 63, starting with a letter or digit)";

/** A well-formed queue name in a request body, query string or config (whether it exists is the catalog's call). */
export const QueueNameSyntax = z.string().regex(QUEUE_NAME_PATTERN, `a queue name is ${QUEUE_NAME_RULE}`);

export function isWellFormedQueueName(value: string): boolean {
  return QUEUE_NAME_PATTERN.test(value);
}

/** The names not in `known`, in the order given; empty when all are known. */
export function unknownQueueNames(names: readonly string[], known: readonly string[]): string[] {
  return names.filter((name) => !known.includes(name));
}

/** Sourcegraph's answer to a multi-queue dequeue naming queues the instance does not serve. */
export function invalidQueueNamesMessage(invalid: readonly string[], known: readonly string[]): string {
  return `Invalid queue name(s) '${invalid.join(', ')}' found. Supported queue names are '${known.join(', ')}'.`;
}
