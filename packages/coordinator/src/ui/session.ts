import { timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import { SandfleetError } from '@sandfleet/protocol';
import { findUiSession, type Database, type UiSession } from '@sandfleet/db';
import type { CoordinatorConfig } from '../config.js';

/**
 * Web UI sessions. The admin token is exchanged once for a random cookie (HttpOnly, SameSite=Strict,
 * Secure over HTTPS) whose sha256 is stored with an expiry; sign-out deletes it. Every POST must come
 * from this origin (Origin header) and carry the session's CSRF token: SameSite alone does not cover
 * older browsers or same-site sibling hosts.
 */

export const SESSION_COOKIE = 'sandfleet_session';
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
export const CSRF_FIELD = 'csrf';

export type UiEnv = { Variables: { session: UiSession; cookieValue: string } };

/** A form post that did not come from one of our own pages. */
export class CrossSiteRequestError extends SandfleetError {}

/** Pages and actions: a live session, else (for GET) a redirect to sign-in that comes back here. */
export function requireSession(database: Database) {
  return createMiddleware<UiEnv>(async (c, next) => {
    const cookieValue = getCookie(c, SESSION_COOKIE);
    const session = cookieValue ? await findUiSession(database.db, cookieValue) : undefined;
    if (!session || !cookieValue) {
      if (c.req.method !== 'GET') return c.text('sign in first', 401);
      const url = new URL(c.req.url);
      const signIn = `/sign-in?next=${encodeURIComponent(url.pathname + url.search)}`;
      // A refreshing fragment: htmx would put the sign-in page inside it; have it load the page instead.
      if (c.req.header('HX-Request') === 'true') return c.body(null, 401, { 'HX-Redirect': '/sign-in' });
      return c.redirect(signIn, 303);
    }
    c.set('session', session);
    c.set('cookieValue', cookieValue);
    await next();
  });
}

export function isHttps(c: Context, config: CoordinatorConfig): boolean {
  return new URL(c.req.url).protocol === 'https:' || config.externalUrl.startsWith('https:');
}

export function setSessionCookie(c: Context, config: CoordinatorConfig, cookieValue: string): void {
  setCookie(c, SESSION_COOKIE, cookieValue, {
    httpOnly: true,
    sameSite: 'Strict',
    secure: isHttps(c, config),
    path: '/',
    maxAge: Math.floor(SESSION_TTL_MS / 1000),
  });
}

export function clearSessionCookie(c: Context, config: CoordinatorConfig): void {
  deleteCookie(c, SESSION_COOKIE, { path: '/', secure: isHttps(c, config), httpOnly: true, sameSite: 'Strict' });
}

/**
 * Refuses a POST whose Origin is missing or not this coordinator's (the address it was reached at,
 * or externalURL). Browsers send Origin on every cross-origin and same-origin form POST.
 */
export function assertSameOrigin(c: Context, config: CoordinatorConfig): void {
  const origin = c.req.header('Origin');
  const allowed = new Set([new URL(c.req.url).origin, new URL(config.externalUrl).origin]);
  if (!origin || !allowed.has(origin)) throw new CrossSiteRequestError(`refused: request from origin ${origin ?? '(none)'}`);
}

/** The posted form of a signed-in page, after the Origin and CSRF-token checks. */
export async function readProtectedForm(c: Context<UiEnv>, config: CoordinatorConfig): Promise<Record<string, string>> {
  assertSameOrigin(c, config);
  const form = await readForm(c);
  const sent = Buffer.from(form[CSRF_FIELD] ?? '');
  const expected = Buffer.from(c.get('session').csrfToken);
  if (sent.length !== expected.length || !timingSafeEqual(sent, expected)) throw new CrossSiteRequestError('refused: missing or wrong CSRF token');
  return form;
}

/** A urlencoded or multipart form's text fields. */
export async function readForm(c: Context): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  return Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** Where to go after sign-in: only a path on this site, never another host (`//evil`, `/\evil`). */
export function safeNextPath(next: string | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return '/';
  return next;
}
