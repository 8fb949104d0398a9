import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * The executor's log: pino JSON lines on stdout; no transports, so a bundle or a
 * plain `node` run needs nothing else. Per-job child loggers add `jobId`, `queue` and `jobUid`.
 */
export function createLogger(options: { level?: string; executorName?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.executorName ? { executor: options.executorName } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
