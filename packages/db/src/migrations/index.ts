import type { Migration } from 'kysely';
import { migration0001 } from './0001_init.js';
import { migration0002 } from './0002_admin_token_source.js';
import { migration0003 } from './0003_ui_sessions.js';
import { migration0004 } from './0004_job_attempts.js';
import { migration0005 } from './0005_executor_secrets.js';
import { migration0006 } from './0006_log_entry_keys.js';

/**
 * Every migration, in order. Static imports (not FileMigrationProvider) so they work from `dist/`
 * and from a bundle. Forward-only: never edit a released entry, add the next number.
 */
export const migrations: Record<string, Migration> = {
  '0001_init': migration0001,
  '0002_admin_token_source': migration0002,
  '0003_ui_sessions': migration0003,
  '0004_job_attempts': migration0004,
  '0005_executor_secrets': migration0005,
  '0006_log_entry_keys': migration0006,
};
