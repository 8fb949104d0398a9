
/**
 * Paths and headers of the executor API. Each path is written once, relative to EXECUTORS_PREFIX:
 * the client calls `executorRoutes` (absolute) and the coordinator registers `executorRoutePatterns`
 * (Hono patterns under the prefix).
 */
export const EXECUTORS_PREFIX = '/.executors';

export const QUEUE_OPERATIONS = [
  'dequeue',
  'heartbeat',
  'addExecutionLogEntry',
  'updateExecutionLogEntry',
  'appendExecutionLog',
  'markComplete',
  'markErrored',
  'markFailed',
] as const;
export type QueueOperation = (typeof QUEUE_OPERATIONS)[number];

/** What the git smart-HTTP protocol asks for under a repository. */
export type GitOperation = 'info/refs' | 'git-upload-pack';

/** Paths relative to EXECUTORS_PREFIX. */
const relative = {
  testAuth: '/test/auth',
  // Multi-queue routes: "dequeue" and "heartbeat" are not queue names, so they cannot clash.
  multiDequeue: '/queue/dequeue',
  multiHeartbeat: '/queue/heartbeat',
  queue: (queue: string, op: QueueOperation) => `/queue/${queue}/${op}`,
  gitRoot: '/git',
  git: (repositoryName: string) => `/git/${repositoryName}`,
  gitOperation: (repositoryName: string, op: GitOperation) => `/git/${repositoryName}/${op}`,
  file: (bucket: string, key: string) => `/files/${bucket}/${key}`,
} as const;

/** Absolute paths, as a client requests them. */
export const executorRoutes = {
  testAuth: EXECUTORS_PREFIX + relative.testAuth,
  multiDequeue: EXECUTORS_PREFIX + relative.multiDequeue,
  multiHeartbeat: EXECUTORS_PREFIX + relative.multiHeartbeat,
  queue: (queue: string, op: QueueOperation) => EXECUTORS_PREFIX + relative.queue(queue, op),
  /** The repository's base URL path; git appends `info/refs` and `git-upload-pack` itself. */
  git: (repositoryName: string) => EXECUTORS_PREFIX + relative.git(repositoryName),
  gitInfoRefs: (repositoryName: string) => EXECUTORS_PREFIX + relative.gitOperation(repositoryName, 'info/refs'),
  gitUploadPack: (repositoryName: string) => EXECUTORS_PREFIX + relative.gitOperation(repositoryName, 'git-upload-pack'),
  /** The files API: `/.executors/files/{bucket}/{key}`. */
  file: (bucket: string, key: string) => EXECUTORS_PREFIX + relative.file(bucket, key),
} as const;

/** Hono route patterns of the same paths, for an app mounted at EXECUTORS_PREFIX. */
export const executorRoutePatterns = {
  testAuth: relative.testAuth,
  multiDequeue: relative.multiDequeue,
  multiHeartbeat: relative.multiHeartbeat,
  /**
   * Only the coordinator's queues match, so an unknown queue is a 404 like any unknown path. Queue
   * names are well-formed (QUEUE_NAME_PATTERN), so they need no escaping in the pattern.
   */
  queue: (op: QueueOperation, queueNames: readonly string[]) => relative.queue(`:queueName{${queueNames.join('|')}}`, op),
  /** Mount point of the git proxy; repository names contain slashes, so it parses paths itself. */
  git: relative.gitRoot,
} as const;

const GIT_PATH = new RegExp(`${escapeRegExp(EXECUTORS_PREFIX + relative.gitRoot)}/(.+)/(info/refs|git-upload-pack)$`);

/** Splits a full request path of the git proxy into repository name and operation. */
export function parseGitPath(path: string): { repositoryName: string; operation: GitOperation } | undefined {
  const m = GIT_PATH.exec(path);
  return m ? { repositoryName: m[1]!, operation: m[2] as GitOperation } : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

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
/**
 * Extension `log-entry-key`: an addExecutionLogEntry may carry this header, a key the executor
 * draws once per entry; a repeat with the same key (a retry whose answer was lost) is answered with
 * the entry it already made. Sent unconditionally: a peer that does not know it ignores it.
 */
export const EXTENSION_LOG_ENTRY_KEY = 'log-entry-key';
export const LOG_ENTRY_KEY_HEADER = 'X-Sandfleet-Log-Entry-Key';
export const LOG_ENTRY_KEY_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
/**
 * Extension `multi-job-dequeue`: an executor with several free slots sends MAX_JOBS_HEADER with
 * how many jobs it takes at most (2 … MAX_DEQUEUE_JOBS); the answer is then a JSON array of 1 … N
 * jobs (or 204), each with its own job token and attempt, claimed in one statement. Without the
 * header a dequeue answers one job or 204, as Sourcegraph's does.
 */
export const EXTENSION_MULTI_JOB_DEQUEUE = 'multi-job-dequeue';
export const MAX_JOBS_HEADER = 'X-Sandfleet-Dequeue-Max-Jobs';
/** Most jobs one multi-job dequeue hands out, whatever the executor asks for. */
export const MAX_DEQUEUE_JOBS = 32;
/** Longest a dequeue may be held open, whatever the executor asks for. */
export const MAX_DEQUEUE_WAIT_SECONDS = 30;

export function parseExtensions(header: string | null | undefined): Set<string> {
  return new Set((header ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}
