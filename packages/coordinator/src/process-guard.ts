import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

/**
 * Keeps a serving coordinator alive through an error nothing caught. Such an error comes from one
 * request's work (a stream a client dropped, a callback of a child process): exiting would kill
 * every other request in flight and every follower, so it is logged and counted instead
 * (`sandfleet_uncaught_errors_total`). Returns the function that removes the guard.
 */
export function installProcessGuard(log: Logger, metrics: Metrics): () => void {
  const onException = (err: Error) => {
    metrics.uncaughtError('exception');
    log.error({ err }, 'uncaught exception (the coordinator keeps serving)');
  };
  const onRejection = (reason: unknown) => {
    metrics.uncaughtError('rejection');
    log.error({ err: reason }, 'unhandled promise rejection (the coordinator keeps serving)');
  };
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
