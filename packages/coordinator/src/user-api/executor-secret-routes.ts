import type { Hono } from 'hono';
import { z } from 'zod';
import { parseDuration } from '@sandfleet/protocol';
import { listExecutorSecrets, rotateExecutorSecret, secretFingerprint, configSecretExpiry, type ExecutorSecretRecord } from '@sandfleet/db';
import type { AppDeps } from '../deps.js';
import { readJsonBody, USER_API_BODY } from '../http/body.js';
import { HttpError } from '../http/errors.js';

/**
 * `/api/executor-secrets`: the executors' shared secrets (fingerprints, never a secret) and their
 * rotation. A rotation's new secret is in its one answer only.
 */

export const DEFAULT_GRACE = '1h';
/** Longest grace period: a retired secret should not linger for weeks. */
export const MAX_GRACE_MS = 7 * 24 * 3_600_000;

/** The grace period as typed in the form or CLI (a duration, e.g. `1h`, `90s`, `0`). */
export function parseGrace(text: string): number {
  const parsed = parseDuration(text.trim());
  if (!parsed.ok) throw new HttpError(400, `grace: ${parsed.error}`);
  if (parsed.value > MAX_GRACE_MS) throw new HttpError(400, `grace: at most 168h, got ${text}`);
  return parsed.value;
}

/** Rotates the shared secret; refused while the site config sets none (executors are not configured). */
export async function rotateSharedSecret(deps: AppDeps, graceMs: number) {
  if (!deps.config.executorAccessToken) throw new HttpError(409, 'executors.accessToken is not set in the site config: there is no secret to rotate');
  const rotated = await rotateExecutorSecret(deps.database.db, { configSecret: deps.config.executorAccessToken, graceMs });
  // Cached acceptances predate the new expiries: a grace of 0 must refuse the old secret at once.
  deps.executorSecrets.clear();
  deps.metrics.executorSecretRotated();
  deps.log.info({ fingerprint: rotated.record.fingerprint, previousAcceptedUntil: rotated.previousAcceptedUntil }, 'executor secret rotated');
  return rotated;
}

export interface ExecutorSecretView {
  source: 'config' | 'rotated';
  fingerprint: string;
  createdAt: string | null;
  /** null: current. */
  expiresAt: string | null;
  accepted: boolean;
}

/** The config's secret (unless a stored row already describes it) and every stored one, newest first. */
export async function executorSecretViews(deps: AppDeps, now = Date.now()): Promise<ExecutorSecretView[]> {
  const stored = await listExecutorSecrets(deps.database.db);
  const view = (r: ExecutorSecretRecord): ExecutorSecretView => ({
    source: r.source,
    fingerprint: r.fingerprint,
    createdAt: r.source === 'config' ? null : r.createdAt.toISOString(),
    expiresAt: r.expiresAt ? r.expiresAt.toISOString() : null,
    accepted: r.expiresAt === null || r.expiresAt.getTime() > now,
  });
  const views = stored.map(view);
  const config = deps.config.executorAccessToken;
  if (config && (await configSecretExpiry(deps.database.db, config)) === undefined) {
    views.push({ source: 'config', fingerprint: secretFingerprint(config), createdAt: null, expiresAt: null, accepted: true });
  }
  return views;
}

const RotateInput = z.object({ grace: z.string().max(40).default(DEFAULT_GRACE) }).strict();

export function registerExecutorSecretRoutes(app: Hono, deps: AppDeps): void {
  app.get('/executor-secrets', async (c) => c.json({ executorSecrets: await executorSecretViews(deps) }));
  app.post('/executor-secrets/rotate', async (c) => {
    const input = await readJsonBody(c, RotateInput, USER_API_BODY);
    const rotated = await rotateSharedSecret(deps, parseGrace(input.grace));
    return c.json({ secret: rotated.secret, fingerprint: rotated.record.fingerprint, previousAcceptedUntil: rotated.previousAcceptedUntil.toISOString() }, 201);
  });
}
