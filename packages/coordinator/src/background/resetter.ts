import type { Logger } from 'pino';
import { resetStalled, type Database } from '@sandfleet/db';
import type { CoordinatorConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import { startPeriodic } from './periodic.js';

/**
 * Returns jobs whose executor stopped heartbeating to the queue (or fails them after too many
 * resets). Runs every few seconds, so a crashed executor's job is picked up again within
 * stalledMaxAge + interval.
 */
export function startResetter(deps: { config: CoordinatorConfig; database: Database; metrics: Metrics; log: Logger }): () => void {
  return startPeriodic('resetter', deps.config.resetterIntervalMs, deps.log, async () => {
    for (const [queue, settings] of Object.entries(deps.config.queues)) {
      const { reset, failed } = await resetStalled(deps.database.db, { queue, stalledMaxAgeMs: settings.stalledMaxAgeMs, maxResets: settings.maxResets });
      if (reset.length || failed.length) deps.log.warn({ queue, reset, failed }, 'reset stalled jobs');
      deps.metrics.stalled(queue, reset.length, failed.length);
    }
  });
}
