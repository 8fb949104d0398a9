import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { BackendName as TestBackend } from '@sandfleet/db';
import { createTestDatabase } from '@sandfleet/db/testing';
import { loadConfig, startCoordinator, type RunningCoordinator } from '@sandfleet/coordinator';

export const ACCESS_TOKEN = 'bench-access-token-0123456789abcdef';
export const ADMIN_TOKEN = 'bench-admin-token';

/** A real coordinator (HTTP on loopback) on a fresh database of the given backend. */
export async function benchCoordinator(backend: TestBackend, env: Record<string, string> = {}): Promise<RunningCoordinator & { admin: (method: string, p: string, body?: unknown) => Promise<any> }> {
  const testDb = await createTestDatabase(backend);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-bench-'));
  const siteConfig = path.join(dataDir, 'site.json');
  fs.writeFileSync(siteConfig, JSON.stringify({ 'executors.accessToken': ACCESS_TOKEN }));
  const config = loadConfig({ port: 0, dataDir, siteConfig }, { SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN, ...testDb.env, ...env });
  const coordinator = await startCoordinator(config, pino({ level: 'warn' }));
  return {
    ...coordinator,
    async admin(method, p, body) {
      const res = await fetch(coordinator.url + p, { method, headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
      return res.json();
    },
    async close() {
      await coordinator.close();
      await testDb.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function executorPost(url: string, p: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url + p, {
    method: 'POST',
    headers: { Authorization: `token-executor ${ACCESS_TOKEN}`, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function backendsFromArgs(): TestBackend[] {
  const arg = process.argv.find((a) => a.startsWith('--backends='));
  return (arg ? arg.slice('--backends='.length) : 'postgres,pglite').split(',') as TestBackend[];
}
