import { createMiddleware } from 'hono/factory';
import { jsonError } from '../http/errors.js';
import { parseAuthorization } from '../http/auth-header.js';
import type { AdminTokenCache } from './admin-token-cache.js';

/** `Authorization: Bearer <admin token>`; tokens are stored as sha256 and looked up by hash (or found in `tokens`' recent acceptances). */
export function adminAuth(tokens: AdminTokenCache) {
  return createMiddleware(async (c, next) => {
    const auth = parseAuthorization(c.req.header('Authorization'));
    if (auth.kind !== 'credentials' || auth.scheme !== 'bearer' || auth.token === '') {
      return jsonError(c, 401, 'missing admin token: send "Authorization: Bearer <admin token>"');
    }
    if (!(await tokens.isAccepted(auth.token))) return jsonError(c, 401, 'invalid admin token');
    await next();
  });
}
