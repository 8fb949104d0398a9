/** Paths and headers of the executor API (reference §2.1, §2.10). */
export const EXECUTORS_PREFIX = '/.executors';

export const executorRoutes = {
  testAuth: `${EXECUTORS_PREFIX}/test/auth`,
  multiDequeue: `${EXECUTORS_PREFIX}/queue/dequeue`,
  multiHeartbeat: `${EXECUTORS_PREFIX}/queue/heartbeat`,
  queue: (queue: string, op: QueueOperation) => `${EXECUTORS_PREFIX}/queue/${queue}/${op}`,
  git: (repositoryName: string) => `${EXECUTORS_PREFIX}/git/${repositoryName}`,
} as const;

export type QueueOperation =
  | 'dequeue'
  | 'heartbeat'
  | 'addExecutionLogEntry'
  | 'updateExecutionLogEntry'
  | 'appendExecutionLog'
  | 'markComplete'
  | 'markErrored'
  | 'markFailed';

export const EXECUTOR_TOKEN_SCHEME = 'token-executor';
export const JOB_ID_HEADER = 'X-Sourcegraph-Job-ID';
export const EXECUTOR_NAME_HEADER = 'X-Sourcegraph-Executor-Name';
export const ACTOR_UID_HEADER = 'X-Sourcegraph-Actor-UID';

/**
 * Sandfleet extensions are negotiated, never assumed. The coordinator lists the ones it offers in
 * this response header on every executor API answer; an executor that asks for a long poll sends
 * WAIT_HEADER with the number of seconds it is willing to wait. Older peers ignore both.
 */
export const EXTENSIONS_HEADER = 'X-Sandfleet-Extensions';
export const WAIT_HEADER = 'X-Sandfleet-Dequeue-Wait';
export const EXTENSION_LONG_POLL = 'long-poll';
export const EXTENSION_LOG_APPEND = 'log-append';
/** Longest a dequeue may be held open, whatever the executor asks for. */
export const MAX_DEQUEUE_WAIT_SECONDS = 30;

export function parseExtensions(header: string | null | undefined): Set<string> {
  return new Set((header ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}
