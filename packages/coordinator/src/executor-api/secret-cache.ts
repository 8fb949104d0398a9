import { executorSecretAcceptance, type Database } from '@sandfleet/db';
import { AcceptanceCache } from '../http/acceptance-cache.js';

/**
 * Accepted executor secrets, remembered for `ttlMs`, so the shared-secret check of every dequeue
 * and heartbeat is not a database round trip. Each is kept no longer than the secret's own expiry,
 * so a grace period ends on time. A rotation through this coordinator clears it; one made through
 * another coordinator on the same database is seen within `ttlMs`.
 */
export class ExecutorSecretCache extends AcceptanceCache {
  constructor(database: Database, configSecret: string | undefined, ttlMs: number, now?: () => number) {
    super((presented) => executorSecretAcceptance(database.db, presented, configSecret), ttlMs, now);
  }
}
