import type { Logger } from 'pino';
import type { Database } from '@sandfleet/db';
import type { CoordinatorConfig } from './config.js';
import type { JobWaiter } from './executor-api/long-poll.js';
import type { Metrics } from './metrics.js';
import type { ensureDemoImage } from './demo/image.js';
import type { ExecutorSecretCache } from './executor-api/secret-cache.js';
import type { AdminTokenCache } from './user-api/admin-token-cache.js';

/** Everything the HTTP app needs, built by main.ts (or by a test) and passed in explicitly (createApp makes what is left out). */
export interface AppDeps {
  config: CoordinatorConfig;
  database: Database;
  waiter: JobWaiter;
  metrics: Metrics;
  log: Logger;
  /** Accepted executor secrets, briefly remembered; cleared by a rotation. */
  executorSecrets: ExecutorSecretCache;
  /** Accepted admin tokens, briefly remembered; cleared by a revocation. */
  adminTokens: AdminTokenCache;
  /** The demo image's registry content, when served (`sandfleet up`). */
  demoImage?: ReturnType<typeof ensureDemoImage> | undefined;
}

/** What createApp needs given; the rest it makes. */
export type AppInput = Omit<AppDeps, 'executorSecrets' | 'adminTokens'> & Partial<Pick<AppDeps, 'executorSecrets' | 'adminTokens'>>;
