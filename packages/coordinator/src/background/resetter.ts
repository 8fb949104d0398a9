import type { Logger } from 'pino';
import { resetStalled, type Database } from '@sandfleet/db';
import type { CoordinatorConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import { startPeriodic } from './periodic.js';

/**
 * Returns jobs whose executor stopped heartbeating to the queue (or fails them after too many
 * resets). Runs every few seconds, so a crashed executor's job is picked up again within
 * stalledMaxAge + interval.
 *
 * Executors cannot heartbeat while the coordinator is down or paused, so staleness is measured
 * from max(last heartbeat, when the coordinator became available again): nothing is reset during
 * the first stalledMaxAge after start-up, or after a gap in the resetter's own ticks (the process
 * was stopped or starved), which gives executors time to heartbeat again first.
 */
export function startResetter(deps: { config: CoordinatorConfig; database: Database; metrics: Metrics; log: Logger }): () => void {
  let availableSince = Date.now();
  let lastTick = availableSince;
  return startPeriodic('resetter', deps.config.resetterIntervalMs, deps.log, async () => {
    const now = Date.now();
    // A tick that comes late (or after a run longer than the interval) means a gap: start again.
    if (now - lastTick > 2 * deps.config.resetterIntervalMs + 1_000) availableSince = now;
    lastTick = now;
    for (const [queue, settings] of Object.entries(deps.config.queues.settings)) {
      if (now - availableSince < settings.stalledMaxAgeMs) continue;
      const { reset, failed } = await resetStalled(deps.database.db, { queue, stalledMaxAgeMs: settings.stalledMaxAgeMs, maxResets: settings.maxResets });
      if (reset.length || failed.length) deps.log.warn({ queue, reset, failed }, 'reset stalled jobs');
      deps.metrics.stalled(queue, reset.length, failed.length);
    }
  });
}
