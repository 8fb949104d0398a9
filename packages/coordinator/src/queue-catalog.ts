import { BUILTIN_QUEUE_NAMES, QueueNameSyntax } from '@sandfleet/protocol';
import { z } from 'zod';

export interface QueueSettings {
  /** A processing job whose last heartbeat is older than this is reset (Sourcegraph: 25 s). */
  stalledMaxAgeMs: number;
  /** Resets before a stalled job is failed (Sourcegraph: 3). */
  maxResets: number;
  /** markErrored turns into failed once num_failures + 1 reaches this (Sourcegraph: 0, no retries). */
  maxRetries: number;
  /** Weight and recent-dequeue limit for the multi-queue dequeue. */
  weight: number;
  dequeueLimit: number;
}

/**
 * One entry of the site config's `sandfleet.queues`: a queue beyond `batches` and `codeintel`,
 * with its multi-queue dequeue weight and limit (dequeues per 5 minutes before other queues go first).
 */
const QueueDeclaration = z
  .object({
    name: QueueNameSyntax,
    weight: z.number().int().positive().optional(),
    limit: z.number().int().positive().optional(),
  })
  .strict();

export const QueueDeclarations = z
  .array(QueueDeclaration)
  .max(100)
  .superRefine(
    (declarations, ctx) => {
      const seen = new Set<string>();
      // `declarations` may hold malformed entries here (see `when`): look at their names only.
      (declarations as unknown[]).forEach((entry, i) => {
        const name = (entry as { name?: unknown } | null)?.name;
        if (typeof name !== 'string') return;
        if ((BUILTIN_QUEUE_NAMES as readonly string[]).includes(name)) {
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${name}" always exists and cannot be declared` });
        } else if (seen.has(name)) {
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${name}" is declared twice` });
        }
        seen.add(name);
      });
    },
    // Also when an entry is malformed, so that one start-up names every problem.
    { when: (payload) => Array.isArray(payload.value) },
  );
export type QueueDeclarations = z.infer<typeof QueueDeclarations>;

/**
 * Sourcegraph's `executors.multiqueue.dequeueCacheConfig`: weight and limit of batches and
 * codeintel. A declared queue takes its own from `sandfleet.queues`.
 */
const DequeueProperties = z.object({ limit: z.number().int().positive().optional(), weight: z.number().int().positive().optional() }).strict();
export const DequeueCacheConfig = z.object({ batches: DequeueProperties.optional(), codeintel: DequeueProperties.optional() }).strict();
export type DequeueCacheConfig = z.infer<typeof DequeueCacheConfig>;

/** Sourcegraph's defaults (`DequeuePropertiesPerQueue`). */
const BUILTIN_QUEUE_SETTINGS: Record<string, Omit<QueueSettings, 'stalledMaxAgeMs' | 'maxResets'>> = {
  batches: { maxRetries: 0, weight: 4, dequeueLimit: 50 },
  codeintel: { maxRetries: 0, weight: 1, dequeueLimit: 250 },
};

/** A declared queue without a weight weighs as much as codeintel; without a limit it has none. */
const DECLARED_QUEUE_DEFAULTS = { maxRetries: 0, weight: 1, dequeueLimit: Number.POSITIVE_INFINITY };

/**
 * The queues this coordinator serves: `batches`, `codeintel` and those its site config declares.
 * Built once per process; every route, filter, page and metric takes its names from here.
 */
export class QueueCatalog {
  /** Sorted, as Sourcegraph lists them in its errors (`batches, codeintel`). */
  readonly names: readonly string[];
  readonly settings: Readonly<Record<string, QueueSettings>>;

  constructor(settings: Record<string, QueueSettings>) {
    this.names = Object.freeze(Object.keys(settings).sort());
    this.settings = Object.freeze({ ...settings });
  }

  static build(
    declarations: QueueDeclarations,
    common: Pick<QueueSettings, 'stalledMaxAgeMs' | 'maxResets'>,
    dequeueCache: DequeueCacheConfig = {},
  ): QueueCatalog {
    const settings: Record<string, QueueSettings> = {};
    for (const name of BUILTIN_QUEUE_NAMES) {
      const override = dequeueCache[name] ?? {};
      settings[name] = {
        ...common,
        ...BUILTIN_QUEUE_SETTINGS[name]!,
        ...(override.weight !== undefined ? { weight: override.weight } : {}),
        ...(override.limit !== undefined ? { dequeueLimit: override.limit } : {}),
      };
    }
    for (const declaration of declarations) {
      settings[declaration.name] = {
        ...common,
        ...DECLARED_QUEUE_DEFAULTS,
        ...(declaration.weight !== undefined ? { weight: declaration.weight } : {}),
        ...(declaration.limit !== undefined ? { dequeueLimit: declaration.limit } : {}),
      };
    }
    return new QueueCatalog(settings);
  }

  has(name: string): boolean {
    return Object.hasOwn(this.settings, name);
  }

  /** A query-string or body field naming one of these queues, with a message that lists them. */
  nameSchema(): z.ZodType<string> {
    return z.string().refine((name) => this.has(name), { message: `unknown queue: the queues are ${this.names.join(', ')}` });
  }
}
