/** @jsxImportSource hono/jsx */
import type { Hono, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { createAdminToken, deleteAdminToken, listAdminTokens } from '@sandfleet/db';
import type { AppDeps } from '../deps.js';
import { HttpError } from '../http/errors.js';
import { executorSecretViews, parseGrace, rotateSharedSecret } from '../user-api/executor-secret-routes.js';
import { ConfigurationPage, ConfirmRevokePage, currentFingerprint, type ConfigurationNotice } from './configuration.js';
import { pageSecurityHeaders } from './headers.js';
import type { PageRenderer } from './layout.js';
import { clearSessionCookie, readProtectedForm, type UiEnv } from './session.js';

const TokenIdParam = z.coerce.number().int().positive();
const TokenName = z.string().max(200);

/**
 * The Configuration page (`/configuration`): site settings, the executors' shared secret and its
 * rotation, admin tokens. New secrets are shown in the answer to the post that made them, never again.
 */
export function registerConfigurationPages(app: Hono<UiEnv>, deps: AppDeps, page: PageRenderer, signedIn: MiddlewareHandler<UiEnv>): void {
  const db = deps.database.db;
  for (const path of ['/configuration', '/configuration/*']) app.use(path, pageSecurityHeaders);

  const show = async (c: Parameters<PageRenderer>[0], notice?: ConfigurationNotice) => {
    const [secrets, tokens] = await Promise.all([executorSecretViews(deps), listAdminTokens(db)]);
    const res = await page(c, 'configuration', 'Configuration', <ConfigurationPage config={deps.config} secrets={secrets} tokens={tokens} session={c.get('session')} notice={notice} />);
    return notice?.kind === 'error' ? new Response(res.body, { status: 400, headers: res.headers }) : res;
  };
  /** A refused input is shown on the page with 400, not as a bare error. */
  const orError = async (c: Parameters<PageRenderer>[0], action: () => Promise<Response>) => {
    try {
      return await action();
    } catch (err) {
      if (err instanceof HttpError) return show(c, { kind: 'error', message: err.message });
      throw err;
    }
  };

  app.get('/configuration', signedIn, (c) => show(c));

  app.post('/configuration/executor-secret/rotate', signedIn, async (c) => {
    const form = await readProtectedForm(c, deps.config);
    return orError(c, async () => {
      // The form names the secret it replaces: a resubmitted (reloaded) form must not rotate again.
      if (form.replaces !== currentFingerprint(await executorSecretViews(deps))) {
        throw new HttpError(409, 'The secret was already rotated since this form was shown; nothing was changed. Rotate again below if you meant to.');
      }
      const rotated = await rotateSharedSecret(deps, parseGrace(form.grace ?? ''));
      return show(c, { kind: 'rotated', secret: rotated.secret, previousAcceptedUntil: rotated.previousAcceptedUntil });
    });
  });

  app.post('/configuration/admin-tokens', signedIn, async (c) => {
    const form = await readProtectedForm(c, deps.config);
    return orError(c, async () => {
      const name = TokenName.safeParse((form.name ?? '').trim());
      if (!name.success) throw new HttpError(400, 'name: at most 200 characters');
      const { token, record } = await createAdminToken(db, { description: name.data, source: 'cli' });
      deps.log.info({ adminTokenId: record.id }, 'admin token created in the web UI');
      return show(c, { kind: 'token-created', token, record });
    });
  });

  app.post('/configuration/admin-tokens/:id/revoke', signedIn, async (c) => {
    const form = await readProtectedForm(c, deps.config);
    const id = TokenIdParam.safeParse(c.req.param('id'));
    const token = id.success ? (await listAdminTokens(db)).find((t) => t.id === id.data) : undefined;
    if (!token) return c.text('admin token not found', 404);
    const own = token.id === c.get('session').adminTokenId;
    if (own && form.confirm !== 'yes') return page(c, 'configuration', 'Revoke your own admin token?', <ConfirmRevokePage token={token} session={c.get('session')} />);
    await deleteAdminToken(db, token.id);
    deps.adminTokens.clear();
    deps.log.info({ adminTokenId: token.id }, 'admin token revoked in the web UI');
    if (own) {
      clearSessionCookie(c, deps.config);
      return c.redirect('/sign-in', 303);
    }
    return c.redirect('/configuration#admin-tokens', 303);
  });
}
