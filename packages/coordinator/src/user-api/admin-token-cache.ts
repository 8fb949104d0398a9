import { createHash } from 'node:crypto';
import { verifyAdminToken, type Database } from '@sandfleet/db';

/**
 * Remembers, for `ttlMs`, which admin tokens were accepted, so a client sending many requests (a
 * script submitting jobs one by one) does not pay a database round trip for each. Only acceptances
 * are kept, keyed by the token's sha256 (never the token). A revocation through this coordinator
 * clears the cache, so it takes effect at once; one made elsewhere (another replica on the same
 * database, a restart of another replica with a changed SANDFLEET_ADMIN_TOKEN) is seen here within
 * `ttlMs`. A use read from the cache does not touch the token's last-used time, which the database
 * keeps to the minute anyway.
 */
export class AdminTokenCache {
  private readonly accepted = new Map<string, number>();
  /** Bumped by clear(): a lookup that began before a revocation must not re-admit the token after it. */
  private generation = 0;

  constructor(
    private readonly database: Database,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async isAccepted(presented: string): Promise<boolean> {
    const key = createHash('sha256').update(presented, 'utf8').digest('base64');
    const until = this.accepted.get(key);
    if (until !== undefined && this.now() < until) return true;
    const generation = this.generation;
    const record = await verifyAdminToken(this.database.db, presented);
    if (!record) {
      this.accepted.delete(key);
      return false;
    }
    if (this.ttlMs > 0 && generation === this.generation) {
      this.prune();
      this.accepted.set(key, this.now() + this.ttlMs);
    }
    return true;
  }

  /** Forgets every acceptance: called after a token is revoked, so the revoked one is refused at once. */
  clear(): void {
    this.generation++;
    this.accepted.clear();
  }

  /** Drops lapsed entries; only accepted tokens get in, so the map stays as small as the set of live tokens. */
  private prune(): void {
    const now = this.now();
    for (const [key, until] of this.accepted) if (until <= now) this.accepted.delete(key);
  }
}
