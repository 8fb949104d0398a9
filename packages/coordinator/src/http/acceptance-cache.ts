import { createHash } from 'node:crypto';

/** What a credential check answers: accepted or not, and until when an acceptance holds at most. */
export interface Acceptance {
  accepted: boolean;
  /** The end of the credential's own validity (a grace period), if it has one. */
  expiresAt?: Date | null;
}

/**
 * Remembers, for `ttlMs`, which presented credentials a database check accepted, so a client
 * sending many requests does not pay a round trip for each. Only acceptances are kept, keyed by
 * the credential's sha256 (never the credential), each until the earlier of `ttlMs` from now and
 * the credential's own expiry. `clear()` (after a revocation or rotation through this process)
 * takes effect at once, also for checks already under way; one made elsewhere is seen within
 * `ttlMs`.
 */
export class AcceptanceCache {
  private readonly accepted = new Map<string, number>();
  /** Bumped by clear(): a check that began before a revocation must not re-admit the credential after it. */
  private generation = 0;

  constructor(
    private readonly check: (presented: string) => Promise<Acceptance>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async isAccepted(presented: string): Promise<boolean> {
    const key = createHash('sha256').update(presented, 'utf8').digest('base64');
    const until = this.accepted.get(key);
    if (until !== undefined && this.now() < until) return true;
    const generation = this.generation;
    const acceptance = await this.check(presented);
    if (!acceptance.accepted) {
      this.accepted.delete(key);
      return false;
    }
    if (this.ttlMs > 0 && generation === this.generation) {
      this.prune();
      const ttlEnd = this.now() + this.ttlMs;
      this.accepted.set(key, acceptance.expiresAt ? Math.min(ttlEnd, acceptance.expiresAt.getTime()) : ttlEnd);
    }
    return true;
  }

  /** How many acceptances are held (lapsed ones included until the next prune). */
  get size(): number {
    return this.accepted.size;
  }

  /** Forgets every acceptance, and keeps checks under way from storing theirs. */
  clear(): void {
    this.generation++;
    this.accepted.clear();
  }

  /** Drops lapsed entries; only accepted credentials get in, so the map stays as small as the set of live ones. */
  private prune(): void {
    const now = this.now();
    for (const [key, until] of this.accepted) if (until <= now) this.accepted.delete(key);
  }
}
