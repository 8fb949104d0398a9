import { verifyAdminToken, type Database } from '@sandfleet/db';
import { AcceptanceCache } from '../http/acceptance-cache.js';

/**
 * Accepted admin tokens, remembered for `ttlMs` (SANDFLEET_ADMIN_TOKEN_CACHE), so a script
 * submitting jobs one by one does not pay a database round trip per request. A revocation through
 * this coordinator clears it; one made elsewhere (another replica, a restart of another replica
 * with a changed SANDFLEET_ADMIN_TOKEN) is seen within `ttlMs`. A use answered from the cache does
 * not touch the token's last-used time, which the database keeps to the minute anyway.
 */
export class AdminTokenCache extends AcceptanceCache {
  constructor(database: Database, ttlMs: number, now?: () => number) {
    super(async (presented) => ({ accepted: Boolean(await verifyAdminToken(database.db, presented)) }), ttlMs, now);
  }
}
