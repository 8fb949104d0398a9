import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { AppDeps } from '../deps.js';

/**
 * Slows guessing admin tokens through the sign-in form: a client (remote address; an IPv6 /64) that
 * sent `maxFailures` wrong tokens within `windowMs` is answered 429 with Retry-After until the oldest
 * of those failures leaves the window — even for a right token, or guessing would go on. Other
 * clients and right tokens below the limit are unaffected. Kept in memory, per coordinator process.
 */
export class SignInLimiter {
  /** Failure times per client, oldest first; at most maxFailures each. */
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    /** Clients remembered at most; past it the least recently failing are forgotten. */
    private readonly maxClients = 10_000,
  ) {}

  /** Milliseconds until `client` may try again; 0 when it may now. */
  retryAfterMs(client: string, now = Date.now()): number {
    if (this.maxFailures === 0) return 0;
    const times = this.recent(client, now);
    return times.length >= this.maxFailures ? times[0]! + this.windowMs - now : 0;
  }

  recordFailure(client: string, now = Date.now()): void {
    if (this.maxFailures === 0) return;
    const times = this.recent(client, now);
    times.push(now);
    if (times.length > this.maxFailures) times.shift();
    this.failures.delete(client); // re-inserted last: Map order is least recently failing first
    this.failures.set(client, times);
    if (this.failures.size > this.maxClients) this.failures.delete(this.failures.keys().next().value!);
  }

  private recent(client: string, now: number): number[] {
    const times = (this.failures.get(client) ?? []).filter((t) => t > now - this.windowMs);
    if (times.length === 0) this.failures.delete(client);
    return times;
  }
}

/** The client a sign-in attempt is counted against. */
export function clientKey(c: Context): string {
  let address: string | undefined;
  try {
    address = getConnInfo(c).remote.address;
  } catch {
    address = undefined; // app.request() in tests: no socket
  }
  if (!address) return 'unknown';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  return address.includes(':') ? ipv6Prefix64(address) : address;
}

/** The first four groups of an IPv6 address: one host usually has a whole /64 to pick from. */
function ipv6Prefix64(address: string): string {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':') + '::/64';
}

/**
 * Wraps the sign-in POST: refuses a client over the limit before the token is checked, and counts
 * an answer of 401 (wrong token) against it. `refused` renders the 429 page.
 */
export function signInRateLimit(deps: AppDeps, refused: (c: Context, retryAfterSeconds: number) => Promise<Response>): MiddlewareHandler {
  const limiter = new SignInLimiter(deps.config.signInMaxFailures, deps.config.signInWindowMs);
  return async (c, next) => {
    const client = clientKey(c);
    const waitMs = limiter.retryAfterMs(client);
    if (waitMs > 0) {
      deps.metrics.signIn('rate_limited');
      deps.log.warn({ client }, 'sign-in refused: too many wrong admin tokens');
      const seconds = Math.ceil(waitMs / 1000);
      c.header('Retry-After', String(seconds));
      return refused(c, seconds);
    }
    await next();
    if (c.res.status === 401) {
      limiter.recordFailure(client);
      deps.metrics.signIn('wrong_token');
    } else if (c.res.status < 400) {
      deps.metrics.signIn('ok');
    }
  };
}
