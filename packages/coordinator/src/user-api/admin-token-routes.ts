import type { Hono } from 'hono';
import { z } from 'zod';
import { createAdminToken, deleteAdminToken, listAdminTokens, type AdminTokenRecord } from '@sandfleet/db';
import type { AppDeps } from '../deps.js';
import { parseInput, readJsonBody, USER_API_BODY } from '../http/body.js';
import { HttpError } from '../http/errors.js';

/**
 * `/api/admin-tokens`: list (never the secret), create (the plaintext is in this one answer only)
 * and revoke by id. Registered behind the admin token check.
 */

const CreateInput = z.object({ description: z.string().max(200).default('') }).strict();
const TokenIdParam = z.coerce.number().int().positive();

export interface AdminTokenView {
  id: number;
  description: string;
  source: AdminTokenRecord['source'];
  createdAt: string;
  lastUsedAt: string | null;
}

function toView(record: AdminTokenRecord): AdminTokenView {
  return {
    id: record.id,
    description: record.description,
    source: record.source,
    createdAt: record.createdAt.toISOString(),
    lastUsedAt: record.lastUsedAt ? record.lastUsedAt.toISOString() : null,
  };
}

export function registerAdminTokenRoutes(app: Hono, deps: AppDeps): void {
  const db = deps.database.db;
  app.get('/admin-tokens', async (c) => c.json({ adminTokens: (await listAdminTokens(db)).map(toView) }));

  app.post('/admin-tokens', async (c) => {
    const input = await readJsonBody(c, CreateInput, USER_API_BODY);
    const { token, record } = await createAdminToken(db, { description: input.description, source: 'cli' });
    deps.log.info({ adminTokenId: record.id }, 'admin token created');
    return c.json({ token, adminToken: toView(record) }, 201);
  });

  app.delete('/admin-tokens/:id', async (c) => {
    const id = parseInput(TokenIdParam, c.req.param('id'));
    const deleted = await deleteAdminToken(db, id);
    deps.adminTokens.clear();
    if (!deleted) throw new HttpError(404, `admin token ${id} not found`);
    deps.log.info({ adminTokenId: id }, 'admin token revoked');
    return c.body(null, 204);
  });
}
