import pino from 'pino';
import { openDatabase, type Database } from '@sandfleet/db';
import type { BackendName as TestBackend } from '@sandfleet/db';
import { createTestDatabase } from '@sandfleet/db/testing';
import { createApp } from '../src/app.js';
import { loadConfig, type CoordinatorConfig } from '../src/config.js';
import { JobWaiter } from '../src/executor-api/long-poll.js';
import { Metrics } from '../src/metrics.js';
import { createAdminToken } from '@sandfleet/db';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ACCESS_TOKEN = 'in-process-access-token-0123456789';
export const ADMIN_TOKEN = 'in-process-admin-token';

/** The real app on a real test database, exercised with `app.request()` (no socket). */
export async function createTestApp(backend: TestBackend, overrides: Partial<CoordinatorConfig> = {}) {
  const testDb = await createTestDatabase(backend);
  const database: Database = await openDatabase(testDb.config);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-app-'));
  const siteConfig = path.join(dataDir, 'site.json');
  fs.writeFileSync(siteConfig, JSON.stringify({ 'executors.accessToken': ACCESS_TOKEN }));
  const config = { ...loadConfig({ dataDir, siteConfig }, {}), ...overrides };
  await createAdminToken(database.db, { token: ADMIN_TOKEN, description: 'test' });
  const waiter = new JobWaiter(database.notifier);
  const app = createApp({ config, database, waiter, metrics: new Metrics(database), log: pino({ level: 'silent' }) });
  const request = (method: string, p: string, init: { body?: unknown; raw?: string; headers?: Record<string, string> } = {}) =>
    app.request(p, {
      method,
      headers: { 'Content-Type': 'application/json', ...init.headers },
      ...(init.raw !== undefined ? { body: init.raw } : init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  return {
    app,
    database,
    config,
    request,
    executor: (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) =>
      request(method, p, { body, headers: { Authorization: `token-executor ${ACCESS_TOKEN}`, ...headers } }),
    admin: (method: string, p: string, body?: unknown) => request(method, p, { body, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }),
    async close() {
      waiter.close();
      await database.close();
      await testDb.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
export type TestApp = Awaited<ReturnType<typeof createTestApp>>;
