import { createMiddleware } from 'hono/factory';
import { verifyAdminToken, type Database } from '@sandfleet/db';
import { jsonError } from '../http/errors.js';
import { parseAuthorization } from '../http/auth-header.js';

/** `Authorization: Bearer <admin token>`; tokens are stored as sha256 and looked up by hash. */
export function adminAuth(database: Database) {
  return createMiddleware(async (c, next) => {
    const auth = parseAuthorization(c.req.header('Authorization'));
    if (auth.kind !== 'credentials' || auth.scheme !== 'bearer' || auth.token === '') {
      return jsonError(c, 401, 'missing admin token: send "Authorization: Bearer <admin token>"');
    }
    if (!(await verifyAdminToken(database.db, auth.token))) return jsonError(c, 401, 'invalid admin token');
    await next();
  });
}
