import { Hono } from 'hono';
import { EXECUTORS_PREFIX } from '@sandfleet/protocol';
import type { AppDeps, AppInput } from './deps.js';
import { ExecutorSecretCache } from './executor-api/secret-cache.js';
import { AdminTokenCache } from './user-api/admin-token-cache.js';
import { executorApiRoutes } from './executor-api/routes.js';
import { userApiRoutes } from './user-api/routes.js';
import { demoRegistryRoutes } from './demo/image.js';
import { bodyLimit } from './http/body-limit.js';
import { uiRoutes } from './ui/routes.js';

/** The whole HTTP surface. Tests call `createApp(deps).request(...)`; main.ts serves it. */
export function createApp(input: AppInput): Hono {
  const deps: AppDeps = {
    ...input,
    executorSecrets: input.executorSecrets ?? new ExecutorSecretCache(input.database, input.config.executorAccessToken, input.config.executorSecretCacheMs),
    adminTokens: input.adminTokens ?? new AdminTokenCache(input.database, input.config.adminTokenCacheMs),
  };
  const app = new Hono();
  app.use(
    '*',
    bodyLimit(deps.config.maxBodyBytes, async (c) => c.json({ error: `request body larger than ${deps.config.maxBodyBytes} bytes` }, 413)),
  );
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    deps.log.debug({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) }, 'request');
  });
  app.get('/healthz', (c) => c.text('ok'));
  app.get('/metrics', async (c) => {
    return c.text(await deps.metrics.registry.metrics(), 200, { 'Content-Type': deps.metrics.registry.contentType });
  });
  app.route(EXECUTORS_PREFIX, executorApiRoutes(deps));
  app.route('/api', userApiRoutes(deps));
  if (deps.demoImage) app.route('/v2', demoRegistryRoutes(deps.demoImage));
  app.route('/', uiRoutes(deps));
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  return app;
}
