import { createHash } from 'node:crypto';
import { executorSecretAcceptance, type Database } from '@sandfleet/db';

/**
 * Remembers, for a short time, which executor secrets were accepted, so the shared-secret check of
 * every dequeue and heartbeat is not a database round trip. Only acceptances are kept (keyed by the
 * secret's sha256, never the secret), each until the earlier of `ttlMs` from now and the secret's own
 * expiry, so a grace period ends on time. A rotation through this coordinator clears the cache; one
 * made through another coordinator on the same database is seen here within `ttlMs`.
 */
export class ExecutorSecretCache {
  private readonly accepted = new Map<string, number>();

  constructor(
    private readonly database: Database,
    private readonly configSecret: string | undefined,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async isAccepted(presented: string): Promise<boolean> {
    const key = createHash('sha256').update(presented, 'utf8').digest('base64');
    const until = this.accepted.get(key);
    if (until !== undefined && this.now() < until) return true;
    const acceptance = await executorSecretAcceptance(this.database.db, presented, this.configSecret);
    if (!acceptance.accepted) {
      this.accepted.delete(key);
      return false;
    }
    if (this.ttlMs > 0) {
      this.prune();
      const ttlEnd = this.now() + this.ttlMs;
      this.accepted.set(key, acceptance.expiresAt ? Math.min(ttlEnd, acceptance.expiresAt.getTime()) : ttlEnd);
    }
    return true;
  }

  /** Forgets every acceptance: after a rotation, each secret's expiry must be read again. */
  clear(): void {
    this.accepted.clear();
  }

  /** Drops lapsed entries; only accepted secrets get in, so the map stays as small as the set of live secrets. */
  private prune(): void {
    const now = this.now();
    for (const [key, until] of this.accepted) if (until <= now) this.accepted.delete(key);
  }
}
