import type { Logger } from 'pino';
import { deleteExpiredExecutorSecrets, deleteExpiredUiSessions, deleteOrphanedJobTokens, deleteStaleExecutors, type Database } from '@sandfleet/db';
import type { CoordinatorConfig } from '../config.js';
import { startPeriodic } from './periodic.js';

export interface JanitorDeps {
  config: Pick<CoordinatorConfig, 'executorRetentionMs' | 'janitorIntervalMs'>;
  database: Database;
  log: Logger;
}

export interface JanitorRun {
  executors: number;
  jobTokens: number;
  uiSessions: number;
  executorSecrets: number;
}

/** A rotated secret is listed this long after its grace period ended, then forgotten (refused either way). */
const EXPIRED_SECRET_LISTING_MS = 7 * 24 * 3_600_000;

/**
 * One pass: deletes executors not seen for executorRetentionMs (they only fill the executors list)
 * job tokens that no longer grant anything, expired web UI sessions and rotated executor secrets a
 * week past their grace period (a retired config secret's row stays: it keeps that secret refused).
 */
export async function runJanitor(deps: JanitorDeps): Promise<JanitorRun> {
  const executors = await deleteStaleExecutors(deps.database.db, deps.config.executorRetentionMs);
  const jobTokens = await deleteOrphanedJobTokens(deps.database.db);
  const uiSessions = await deleteExpiredUiSessions(deps.database.db);
  const executorSecrets = await deleteExpiredExecutorSecrets(deps.database.db, EXPIRED_SECRET_LISTING_MS);
  if (executors || jobTokens || uiSessions || executorSecrets) deps.log.info({ executors, jobTokens, uiSessions, executorSecrets }, 'janitor deleted stale rows');
  return { executors, jobTokens, uiSessions, executorSecrets };
}

/** Runs the janitor every janitorIntervalMs (the first pass after one interval); returns the stop function. */
export function startJanitor(deps: JanitorDeps): () => void {
  return startPeriodic('janitor', deps.config.janitorIntervalMs, deps.log, async () => void (await runJanitor(deps)));
}
