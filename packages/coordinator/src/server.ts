import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ensureDemoImage } from './demo/image.js';
import { serve, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import { createAdminToken, migrateToLatest, openDatabase, syncEnvAdminToken, countAdminTokens } from '@sandfleet/db';
import { createApp } from './app.js';
import type { CoordinatorConfig } from './config.js';
import { JobWaiter } from './executor-api/long-poll.js';
import { Metrics } from './metrics.js';
import { startResetter } from './background/resetter.js';
import { startJanitor } from './background/janitor.js';
import { startMetricReporter } from './background/metric-reporter.js';
import { registerQueueAgeGauge } from './queue-age-gauge.js';
import { installProcessGuard } from './process-guard.js';

export interface RunningCoordinator {
  url: string;
  /** Set when this start generated the admin token; it is shown once and stored only hashed. */
  generatedAdminToken?: string;
  close(): Promise<void>;
}

/** Opens the database, migrates, and serves the app until `close()`. */
export interface StartOptions {
  /** Survive errors nothing caught (see process-guard.ts): for the serving process, not for tests in one process. */
  guardProcess?: boolean;
}

export async function startCoordinator(config: CoordinatorConfig, log: Logger, options: StartOptions = {}): Promise<RunningCoordinator> {
  const database = await openDatabase(config.database);
  let removeGuard = () => {};
  let stopMetricReporter = async () => {};
  try {
    const applied = await migrateToLatest(database);
    if (applied.length) log.info({ applied }, 'applied migrations');
    const generatedAdminToken = await ensureAdminToken(database, config.adminToken);
    const waiter = new JobWaiter(database.notifier);
    const metrics = new Metrics(database, config.queues.names);
    registerQueueAgeGauge(metrics.registry, database, config.queues.names);
    if (options.guardProcess) removeGuard = installProcessGuard(log, metrics);
    const demoImage = config.serveDemoImage ? ensureDemoImage(path.join(config.dataDir, 'demo-image')) : undefined;
    const app = createApp({ config, database, waiter, metrics, log, demoImage });
    stopMetricReporter = await startMetricReporter({ config, database, metrics, log });
    const server = await listen(app.fetch, config.host, config.port);
    const stopResetter = startResetter({ config, database, metrics, log });
    const stopJanitor = startJanitor({ config, database, log });
    const port = (server.address() as AddressInfo).port;
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    if (!config.executorAccessToken) log.warn('executors.accessToken is not set in the site config: the executor API answers 500 until it is');
    log.info({ url, database: config.database.kind }, 'coordinator listening');
    return {
      url,
      ...(generatedAdminToken ? { generatedAdminToken } : {}),
      async close() {
        stopResetter();
        stopJanitor();
        await stopMetricReporter();
        waiter.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Server-Sent-Event streams and long polls keep connections open.
          (server as import('node:http').Server).closeAllConnections?.();
        });
        await database.close();
        removeGuard();
      },
    };
  } catch (err) {
    await stopMetricReporter();
    removeGuard();
    await database.close();
    throw err;
  }
}

function listen(fetch: Parameters<typeof serve>[0]['fetch'], hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, () => resolve(server));
    server.once('error', reject);
  });
}

async function ensureAdminToken(database: Awaited<ReturnType<typeof openDatabase>>, configured: string | undefined): Promise<string | undefined> {
  if (configured) {
    // The env token is authoritative: a changed SANDFLEET_ADMIN_TOKEN revokes the previous one.
    await syncEnvAdminToken(database.db, configured);
    return undefined;
  }
  if ((await countAdminTokens(database.db)) > 0) return undefined;
  const { token } = await createAdminToken(database.db, { description: 'generated at first start', source: 'generated' });
  return token;
}
