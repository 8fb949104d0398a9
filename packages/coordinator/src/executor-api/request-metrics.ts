import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { tallyStatements, type StatementTally } from '@sandfleet/db';
import type { Metrics } from '../metrics.js';

/**
 * Times every executor API request and counts the database statements it sent, labelled by the
 * matched route pattern (bounded, unlike the path: queue names and job ids never become labels). A
 * streamed answer (git fetches) is timed until its head is ready.
 */
export function executorApiRequestMetrics(metrics: Metrics): MiddlewareHandler {
  return createMiddleware(async (c, next) => {
    const started = performance.now();
    const tally: StatementTally = { statements: 0 };
    try {
      await tallyStatements(tally, next);
    } finally {
      metrics.executorApiRequest({
        route: routePattern(c),
        method: c.req.method,
        code: c.res.status,
        seconds: (performance.now() - started) / 1000,
        statements: tally.statements,
      });
    }
  });
}

/**
 * The pattern of the handler that answered, without parameter constraints. When no route matched it
 * is the innermost wildcard that ran (`/.executors/*`): still a pattern, never the path.
 */
function routePattern(c: Context): string {
  return c.req.routePath.replace(/\{[^}]*\}/g, '');
}
