/**
 * A real coordinator on a fresh test database, three ways: the app in-process without a socket
 * (`app.request()`), the app serving HTTP on loopback in this process, and a `sandfleet serve`
 * child process. All share the data directory setup and the tokens below.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createAdminToken, openDatabase, type BackendName, type Database, type DbConfig } from '@sandfleet/db';
import { createApp, JobWaiter, loadConfig, Metrics, startCoordinator, type CoordinatorConfig, type RunningCoordinator } from '@sandfleet/coordinator';
import { createTestDatabase, type TestDatabase } from './db/databases.js';
import { executorAuthorization, sendTo, type Send } from './executor-client.js';
import { basicEnv, spawnProcess, type SpawnedProcess } from './processes.js';
import { makeTempDir, removeTempDir } from './temp-dirs.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SANDFLEET_BIN = path.join(REPO_ROOT, 'packages/coordinator/bin/sandfleet.js');

/** The executors' shared secret of every test coordinator (tests check it never reaches logs). */
export const ACCESS_TOKEN = 'e2e-access-token-0123456789abcdef';
export const ADMIN_TOKEN = 'e2e-admin-token-0123456789';

interface CoordinatorDir {
  dataDir: string;
  siteConfig: string;
}

/** More site config keys for a test coordinator, e.g. `{ 'sandfleet.queues': [{ name: 'docs' }] }`. */
export type SiteConfigExtras = Record<string, unknown>;

/** A data directory holding a site config that sets the executors' access token (and `site`). */
function makeCoordinatorDir(prefix: string, site: SiteConfigExtras = {}): CoordinatorDir {
  const dataDir = makeTempDir(prefix);
  const siteConfig = path.join(dataDir, 'site-config.json');
  fs.writeFileSync(siteConfig, JSON.stringify({ 'executors.accessToken': ACCESS_TOKEN, ...site }));
  return { dataDir, siteConfig };
}

export interface AdminAnswer<T = any> {
  status: number;
  body: T;
}

/** The user JSON API with the admin token; bodies are parsed as JSON. */
export function adminApi(send: Send) {
  return async <T = any>(method: string, p: string, body?: unknown): Promise<AdminAnswer<T>> => {
    const res = await send(p, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

// ---------------------------------------------------------------- in-process, no socket

export interface RequestInitOptions {
  body?: unknown;
  /** Sent as is instead of `body` as JSON. */
  raw?: string;
  headers?: Record<string, string>;
}

/** The real app on a real test database, exercised with `app.request()` (no socket). */
export async function createTestApp(backend: BackendName, overrides: Partial<CoordinatorConfig> = {}, site: SiteConfigExtras = {}) {
  const testDb = await createTestDatabase(backend);
  const database: Database = await openDatabase(testDb.config);
  const { dataDir, siteConfig } = makeCoordinatorDir('sandfleet-app-', site);
  const config = { ...loadConfig({ dataDir, siteConfig }, {}), ...overrides };
  await createAdminToken(database.db, { token: ADMIN_TOKEN, description: 'test' });
  const waiter = new JobWaiter(database.notifier);
  const app = createApp({ config, database, waiter, metrics: new Metrics(database, config.queues.names), log: pino({ level: 'silent' }) });
  const request = (method: string, p: string, init: RequestInitOptions = {}) =>
    app.request(p, {
      method,
      headers: { 'Content-Type': 'application/json', ...init.headers },
      ...(init.raw !== undefined ? { body: init.raw } : init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  const send: Send = async (p, init) => app.request(p, init);
  return {
    app,
    database,
    config,
    request,
    /** For executorClient: the app as a Send. */
    send,
    executor: (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) =>
      request(method, p, { body, headers: { ...executorAuthorization(ACCESS_TOKEN), ...headers } }),
    admin: (method: string, p: string, body?: unknown) => request(method, p, { body, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }),
    async close() {
      waiter.close();
      await database.close();
      await testDb.drop();
      removeTempDir(dataDir);
    },
  };
}
export type TestApp = Awaited<ReturnType<typeof createTestApp>>;

// ---------------------------------------------------------------- in-process, HTTP on loopback

export interface CoordinatorServer extends RunningCoordinator {
  /** The user JSON API; throws unless the answer is 2xx, resolves with the parsed body. */
  admin: (method: string, p: string, body?: unknown) => Promise<any>;
}

/** A real coordinator serving HTTP on 127.0.0.1 in this process, on a fresh database. */
export async function startCoordinatorServer(backend: BackendName, env: Record<string, string> = {}, site: SiteConfigExtras = {}): Promise<CoordinatorServer> {
  const testDb = await createTestDatabase(backend);
  const { dataDir, siteConfig } = makeCoordinatorDir('sandfleet-server-', site);
  const config = loadConfig({ port: 0, dataDir, siteConfig }, { SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN, ...testDb.env, ...env });
  const coordinator = await startCoordinator(config, pino({ level: 'warn' }));
  const api = adminApi(sendTo(coordinator.url));
  return {
    ...coordinator,
    async admin(method, p, body) {
      const answer = await api(method, p, body);
      if (answer.status < 200 || answer.status >= 300) throw new Error(`${method} ${p}: ${answer.status} ${JSON.stringify(answer.body)}`);
      return answer.body;
    },
    async close() {
      await coordinator.close();
      await testDb.drop();
      removeTempDir(dataDir);
    },
  };
}

// ---------------------------------------------------------------- child process

export interface CoordinatorProcess {
  url: string;
  dataDir: string;
  /** The coordinator's database, for a bench or test that fills or inspects it directly. */
  databaseConfig: DbConfig;
  child: SpawnedProcess['child'];
  output: () => string;
  api: <T = any>(method: string, path: string, body?: unknown) => Promise<AdminAnswer<T>>;
  stop: () => Promise<void>;
}

/**
 * `sandfleet serve` on a free port and a fresh database; resolves once it listens. `command`: how
 * `sandfleet` is started (the checkout's bin by default; a release bundle's launcher, say).
 */
export async function startCoordinatorProcess(
  backend: BackendName,
  env: Record<string, string> = {},
  command: readonly string[] = [process.execPath, SANDFLEET_BIN],
  site: SiteConfigExtras = {},
): Promise<CoordinatorProcess> {
  const { dataDir, siteConfig } = makeCoordinatorDir('sandfleet-e2e-', site);
  let database: TestDatabase | undefined;
  let spawned: SpawnedProcess | undefined;
  try {
    database = await createTestDatabase(backend);
    spawned = spawnProcess(command[0]!, [...command.slice(1), 'serve', '--port', '0', '--data-dir', dataDir, '--site-config', siteConfig], {
      ...basicEnv({ HOME: dataDir, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN, SANDFLEET_LOG_LEVEL: 'info' }),
      ...database.env,
      ...env,
    });
    const listening = await spawned.outputMatches(/"url":"(http:\/\/[^"]+)","database":"\w+","msg":"coordinator listening"/, 60_000);
    const url = listening[1]!;
    const { child, output } = spawned;
    const db = database;
    const stopSpawned = spawned.stop;
    return {
      url,
      dataDir,
      databaseConfig: db.config,
      child,
      output,
      api: adminApi(sendTo(url)),
      async stop() {
        await stopSpawned();
        await db.drop();
        removeTempDir(dataDir);
      },
    };
  } catch (err) {
    await spawned?.stop();
    await database?.drop();
    removeTempDir(dataDir);
    throw err;
  }
}

/** Polls the user API until the job reaches one of `states`. */
export async function waitForJobState(c: Pick<CoordinatorProcess, 'api'>, id: number, states: string[], timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < deadline) {
    last = (await c.api('GET', `/api/jobs/${id}`)).body;
    if (states.includes(last.state)) return last;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`job ${id} did not reach ${states.join('|')} in ${timeoutMs} ms; last: ${JSON.stringify(last, null, 2)}`);
}
