import type { Logger } from 'pino';
import type { Database } from '@sandfleet/db';
import type { CoordinatorConfig } from './config.js';
import type { JobWaiter } from './executor-api/long-poll.js';
import type { Metrics } from './metrics.js';
import type { ensureDemoImage } from './demo/image.js';

/** Everything the HTTP app needs, built by main.ts (or by a test) and passed in explicitly. */
export interface AppDeps {
  config: CoordinatorConfig;
  database: Database;
  waiter: JobWaiter;
  metrics: Metrics;
  log: Logger;
  /** The demo image's registry content, when served (`sandfleet up`). */
  demoImage?: ReturnType<typeof ensureDemoImage> | undefined;
}
