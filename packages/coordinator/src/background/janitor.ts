import type { Logger } from 'pino';
import { deleteExpiredUiSessions, deleteOrphanedJobTokens, deleteStaleExecutors, type Database } from '@sandfleet/db';
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
}

/**
 * One pass: deletes executors not seen for executorRetentionMs (they only fill the executors list)
 * job tokens that no longer grant anything, and expired web UI sessions.
 */
export async function runJanitor(deps: JanitorDeps): Promise<JanitorRun> {
  const executors = await deleteStaleExecutors(deps.database.db, deps.config.executorRetentionMs);
  const jobTokens = await deleteOrphanedJobTokens(deps.database.db);
  const uiSessions = await deleteExpiredUiSessions(deps.database.db);
  if (executors || jobTokens || uiSessions) deps.log.info({ executors, jobTokens, uiSessions }, 'janitor deleted stale rows');
  return { executors, jobTokens, uiSessions };
}

/** Runs the janitor every janitorIntervalMs (the first pass after one interval); returns the stop function. */
export function startJanitor(deps: JanitorDeps): () => void {
  return startPeriodic('janitor', deps.config.janitorIntervalMs, deps.log, async () => void (await runJanitor(deps)));
}
