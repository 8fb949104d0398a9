import { createMiddleware } from 'hono/factory';
import { verifyAdminToken, type Database } from '@sandfleet/db';
import { jsonError } from '../http/errors.js';

/** `Authorization: Bearer <admin token>`; tokens are stored as sha256 and looked up by hash. */
export function adminAuth(database: Database) {
  return createMiddleware(async (c, next) => {
    const header = c.req.header('Authorization') ?? '';
    const [scheme, token, ...rest] = header.split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token || rest.length > 0) {
      return jsonError(c, 401, 'missing admin token: send "Authorization: Bearer <admin token>"');
    }
    if (!(await verifyAdminToken(database.db, token))) return jsonError(c, 401, 'invalid admin token');
    await next();
  });
}
