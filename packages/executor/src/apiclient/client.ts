import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { z } from 'zod';
import {
  EXECUTOR_NAME_HEADER,
  EXECUTOR_TOKEN_SCHEME,
  EXECUTORS_PREFIX,
  EXTENSIONS_HEADER,
  EXTENSION_LONG_POLL,
  HeartbeatResponse,
  JOB_ID_HEADER,
  MAX_DEQUEUE_WAIT_SECONDS,
  WAIT_HEADER,
  WireJob,
  executorRoutes,
  parseExtensions,
  parseRecordUid,
  type AppendExecutionLogRequest,
  type ExecutionLogEntry,
  type QueueOperation,
} from '@sandfleet/protocol';
import { EXECUTOR_VERSION } from '../version.js';

/**
 * The executor's HTTP client for the instance (Sourcegraph or our coordinator), reference §2.10:
 * `token-executor <password>` for test/auth, dequeue and heartbeat; `Bearer <job token>` plus the job-ID
 * and executor-name headers for everything about one job.
 */

/** A dequeued job with the two things the executor derives from where it came from. */
export type ExecutorJob = WireJob & {
  /** The queue its job routes go to: the configured queue, or `queue` of a multi-queue dequeue. */
  readonly queue: string;
  /** The ID used in heartbeats: `"<id>"` (single queue) or `"<id>-<queue>"` (multi-queue). */
  readonly uid: string;
};

/** The fields of a job that job routes need. */
export type JobRef = Pick<ExecutorJob, 'id' | 'token' | 'queue'>;

/** Any status other than the 200/204 a route is expected to answer. */
export class UnexpectedStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`unexpected status code ${status}`);
    this.name = 'UnexpectedStatusError';
  }
}

/** The request never got an HTTP answer (connection refused, reset, timeout). */
export class CoordinatorUnreachableError extends Error {
  constructor(readonly method: string, readonly path: string, cause: unknown) {
    super(`${method} ${path} failed: ${describeCause(cause)}`, { cause });
    this.name = 'CoordinatorUnreachableError';
  }
}

/** A 200 answer whose body is not what the protocol says. */
export class InvalidResponseError extends Error {
  constructor(readonly path: string, readonly detail: string) {
    super(`invalid response from ${path}: ${detail}`);
    this.name = 'InvalidResponseError';
  }
}

/** Host facts sent with every heartbeat (reference §2.5). */
export interface HeartbeatTelemetry {
  os: string;
  architecture: string;
  gitVersion: string;
  srcCliVersion: string;
  dockerVersion: string;
  igniteVersion: string;
  prometheusMetrics: string;
}

export interface HeartbeatResult {
  knownIds: string[];
  cancelIds: string[];
}

export interface CoordinatorClientOptions {
  /** Base URL without trailing slash. */
  frontendUrl: string;
  frontendPassword: string;
  executorName: string;
  queueNames: readonly string[];
  /** Multi-queue endpoints (EXECUTOR_QUEUE_NAMES) rather than `/queue/<name>/...`. */
  multiQueue: boolean;
  /** Resource metadata sent with dequeue requests. */
  resources?: { numCPUs: number; memory: string; diskSpace: string };
  telemetry?: Partial<HeartbeatTelemetry>;
  /** Timeout of one request, in ms. @default 30_000 */
  requestTimeoutMs?: number;
  /** Attempts for log and mark calls that fail without an HTTP answer. @default 5 */
  retryAttempts?: number;
  /** First retry delay in ms, doubled per attempt (capped at 4 s). @default 250 */
  retryBaseDelayMs?: number;
  /** Called before each retry, for logging. */
  onRetry?: (info: { path: string; attempt: number; error: Error }) => void;
}

/** The connection settings of a client, taken from the executor's configuration. */
export function connectionOptions(config: Pick<CoordinatorClientOptions, 'frontendUrl' | 'frontendPassword' | 'executorName' | 'queueNames' | 'multiQueue'>) {
  const { frontendUrl, frontendPassword, executorName, queueNames, multiQueue } = config;
  return { frontendUrl, frontendPassword, executorName, queueNames, multiQueue };
}

/** Extra seconds a long-poll dequeue may take beyond the wait it asked for, before the client gives up. */
export const LONG_POLL_GRACE_SECONDS = 5;

export class CoordinatorClient {
  readonly #options: CoordinatorClientOptions;
  #extensions: ReadonlySet<string> = new Set();
  #telemetry: Partial<HeartbeatTelemetry>;

  constructor(options: CoordinatorClientOptions) {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(options.frontendUrl)) {
      throw new TypeError(`parse ${JSON.stringify(options.frontendUrl)}: missing protocol scheme`);
    }
    this.#options = { ...options, frontendUrl: options.frontendUrl.replace(/\/+$/, '') };
    this.#telemetry = { ...options.telemetry };
  }

  /** Sandfleet extensions the instance offered in its latest answer (`X-Sandfleet-Extensions`). */
  get extensions(): ReadonlySet<string> {
    return this.#extensions;
  }

  supports(extension: string): boolean {
    return this.#extensions.has(extension);
  }

  setTelemetry(telemetry: Partial<HeartbeatTelemetry>): void {
    this.#telemetry = { ...this.#telemetry, ...telemetry };
  }

  /** `GET /.executors/test/auth`; resolves on 200, throws UnexpectedStatusError otherwise. */
  async testAuth(signal?: AbortSignal): Promise<void> {
    await this.#request('GET', executorRoutes.testAuth, { auth: this.#executorAuth(), signal });
  }

  /**
   * Takes one job, or returns undefined when the queue(s) are empty (204). With `waitSeconds` > 0 and
   * an instance that offers long polls, the instance may hold the request up to that long.
   */
  async dequeue(options: { waitSeconds?: number; signal?: AbortSignal } = {}): Promise<ExecutorJob | undefined> {
    const { multiQueue, queueNames, executorName, resources } = this.#options;
    const path = multiQueue ? executorRoutes.multiDequeue : executorRoutes.queue(queueNames[0]!, 'dequeue');
    const body = {
      ...(multiQueue ? { queues: queueNames } : {}),
      executorName,
      version: EXECUTOR_VERSION,
      ...(resources ? { numCPUs: resources.numCPUs, memory: resources.memory, diskSpace: resources.diskSpace } : {}),
    };
    const wait = Math.min(options.waitSeconds ?? 0, MAX_DEQUEUE_WAIT_SECONDS);
    const longPoll = wait > 0 && this.supports(EXTENSION_LONG_POLL);
    const response = await this.#request('POST', path, {
      auth: this.#executorAuth(),
      body,
      signal: options.signal,
      headers: longPoll ? { [WAIT_HEADER]: String(wait) } : {},
      timeoutMs: longPoll ? (wait + LONG_POLL_GRACE_SECONDS) * 1000 : undefined,
    });
    if (response === undefined) return undefined;
    const job = parseBody(path, response, WireJob);
    const queue = multiQueue ? job.queue : queueNames[0]!;
    if (!queue) throw new InvalidResponseError(path, 'a multi-queue dequeue answered a job without "queue"');
    return { ...job, queue, uid: multiQueue ? `${job.id}-${queue}` : String(job.id) };
  }

  /** Startup connectivity check: a heartbeat for no jobs (it also registers the executor). */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.heartbeat([], signal);
  }

  /** Reports the running jobs (by uid) and learns which the instance still knows and which to cancel. */
  async heartbeat(jobUids: readonly string[], signal?: AbortSignal): Promise<HeartbeatResult> {
    const { multiQueue, queueNames, executorName } = this.#options;
    const telemetry = {
      os: this.#telemetry.os ?? goOs(),
      architecture: this.#telemetry.architecture ?? goArch(),
      dockerVersion: this.#telemetry.dockerVersion ?? '',
      executorVersion: EXECUTOR_VERSION,
      gitVersion: this.#telemetry.gitVersion ?? '',
      igniteVersion: this.#telemetry.igniteVersion ?? '',
      srcCliVersion: this.#telemetry.srcCliVersion ?? '',
      prometheusMetrics: this.#telemetry.prometheusMetrics ?? '',
    };
    let path: string;
    let body: Record<string, unknown>;
    if (multiQueue) {
      path = executorRoutes.multiHeartbeat;
      body = { executorName, queueNames, jobIdsByQueue: groupByQueue(jobUids), ...telemetry };
    } else {
      path = executorRoutes.queue(queueNames[0]!, 'heartbeat');
      // The V1 shape with int IDs and version "V2", which every instance since 4.3 understands.
      body = { version: 'V2', executorName, jobIds: jobUids.map(Number), ...telemetry };
    }
    const response = await this.#request('POST', path, { auth: this.#executorAuth(), body, signal });
    const json = response === undefined ? {} : parseJson(path, response);
    // Instances before 4.3 answered a bare list of known IDs.
    const parsed = Array.isArray(json) ? { knownIds: json, cancelIds: [] } : parseValue(path, json, HeartbeatResponse);
    return {
      knownIds: (parsed.knownIds ?? []).map(String),
      cancelIds: (parsed.cancelIds ?? []).map(String),
    };
  }

  /** Starts a log entry; returns its ID (1-based index on Sourcegraph). */
  async addExecutionLogEntry(job: JobRef, entry: ExecutionLogEntry): Promise<number> {
    const path = executorRoutes.queue(job.queue, 'addExecutionLogEntry');
    const response = await this.#jobRequest(job, 'addExecutionLogEntry', { ...this.#jobBody(job), ...entry });
    return parseBody(path, response ?? 'null', z.number().int());
  }

  /** Replaces a log entry (Sourcegraph's way: the whole `out` every time). */
  async updateExecutionLogEntry(job: JobRef, entryId: number, entry: ExecutionLogEntry): Promise<void> {
    await this.#jobRequest(job, 'updateExecutionLogEntry', { ...this.#jobBody(job), entryId, ...entry });
  }

  /** Appends one chunk to a log entry (extension `log-append`). A repeated `seq` is ignored by the instance. */
  async appendExecutionLog(job: JobRef, chunk: Omit<AppendExecutionLogRequest, 'executorName' | 'jobId'>): Promise<void> {
    await this.#jobRequest(job, 'appendExecutionLog', { ...this.#jobBody(job), ...chunk });
  }

  async markComplete(job: JobRef): Promise<void> {
    await this.#jobRequest(job, 'markComplete', this.#jobBody(job));
  }

  /** Retryable failure. */
  async markErrored(job: JobRef, errorMessage: string): Promise<void> {
    await this.#jobRequest(job, 'markErrored', { ...this.#jobBody(job), errorMessage });
  }

  /** Permanent failure; for a job the instance asked to cancel it becomes `canceled`. */
  async markFailed(job: JobRef, errorMessage: string): Promise<void> {
    await this.#jobRequest(job, 'markFailed', { ...this.#jobBody(job), errorMessage });
  }

  /** Streams a workspace file from the files API (`GET /.executors/files/<bucket>/<key>`). */
  async getFile(job: JobRef, bucket: string, key: string, signal?: AbortSignal): Promise<Readable> {
    const path = `${EXECUTORS_PREFIX}/files/${bucket}/${key}`;
    // Files can be large: allow ten minutes for the whole body rather than the usual request timeout.
    const response = await this.#send('GET', path, { auth: this.#jobAuth(job), headers: this.#jobHeaders(job), signal, timeoutMs: 600_000 });
    if (response.status !== 200) {
      const body = await response.text().catch(() => '');
      throw new UnexpectedStatusError(response.status, body, 'GET', path);
    }
    if (!response.body) return Readable.from([]);
    return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  }

  /** `HEAD /.executors/files/<bucket>/<key>`: 200 → true, 404 → false. */
  async fileExists(job: JobRef, bucket: string, key: string, signal?: AbortSignal): Promise<boolean> {
    const path = `${EXECUTORS_PREFIX}/files/${bucket}/${key}`;
    const response = await this.#send('HEAD', path, { auth: this.#jobAuth(job), headers: this.#jobHeaders(job), signal });
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw new UnexpectedStatusError(response.status, '', 'HEAD', path);
  }

  /** The job-token headers, also added by the git proxy. */
  jobHeaders(job: Pick<JobRef, 'id' | 'token'>): Record<string, string> {
    return { Authorization: this.#jobAuth(job), ...this.#jobHeaders(job) };
  }

  #executorAuth(): string {
    return `${EXECUTOR_TOKEN_SCHEME} ${this.#options.frontendPassword}`;
  }

  #jobAuth(job: Pick<JobRef, 'token'>): string {
    // Jobs from instances older than job tokens carry none; those accept the executor token.
    return job.token ? `Bearer ${job.token}` : this.#executorAuth();
  }

  #jobHeaders(job: Pick<JobRef, 'id'>): Record<string, string> {
    return { [JOB_ID_HEADER]: String(job.id), [EXECUTOR_NAME_HEADER]: this.#options.executorName };
  }

  #jobBody(job: JobRef): { executorName: string; jobId: number } {
    return { executorName: this.#options.executorName, jobId: job.id };
  }

  /** A job route, retried with backoff when the instance cannot be reached. */
  async #jobRequest(job: JobRef, op: QueueOperation, body: unknown): Promise<string | undefined> {
    const path = executorRoutes.queue(job.queue, op);
    const attempts = this.#options.retryAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#request('POST', path, { auth: this.#jobAuth(job), headers: this.#jobHeaders(job), body });
      } catch (err) {
        if (!(err instanceof CoordinatorUnreachableError) || attempt >= attempts) throw err;
        this.#options.onRetry?.({ path, attempt, error: err });
        const delay = Math.min((this.#options.retryBaseDelayMs ?? 250) * 2 ** (attempt - 1), 4_000);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Sends a request; 200 → body text, 204 → undefined, anything else → UnexpectedStatusError. */
  async #request(method: string, path: string, init: SendInit): Promise<string | undefined> {
    const response = await this.#send(method, path, init);
    const text = await response.text().catch((err: unknown) => {
      throw new CoordinatorUnreachableError(method, path, err);
    });
    if (response.status === 204) return undefined;
    if (response.status === 200) return text;
    throw new UnexpectedStatusError(response.status, text, method, path);
  }

  async #send(method: string, path: string, init: SendInit): Promise<Response> {
    const timeout = AbortSignal.timeout(init.timeoutMs ?? this.#options.requestTimeoutMs ?? 30_000);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const headers: Record<string, string> = { Authorization: init.auth, ...init.headers };
    if (init.body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.#options.frontendUrl}${path}`, {
        method,
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal,
      });
    } catch (err) {
      // The caller's own abort is not "unreachable": let it surface as the AbortError it is.
      if (init.signal?.aborted) throw init.signal.reason ?? err;
      throw new CoordinatorUnreachableError(method, path, err);
    }
    // A proxy's 5xx says nothing about the instance behind it, so only real answers update the set.
    if (response.status < 500) this.#extensions = parseExtensions(response.headers.get(EXTENSIONS_HEADER));
    return response;
  }
}

interface SendInit {
  auth: string;
  headers?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

function groupByQueue(uids: readonly string[]): { queueName: string; jobIds: string[] }[] {
  const byQueue = new Map<string, string[]>();
  for (const uid of uids) {
    const parsed = parseRecordUid(uid);
    if (!parsed?.queue) continue;
    byQueue.set(parsed.queue, [...(byQueue.get(parsed.queue) ?? []), String(parsed.id)]);
  }
  return [...byQueue.keys()].sort().map((queueName) => ({ queueName, jobIds: byQueue.get(queueName)! }));
}

function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidResponseError(path, `not JSON: ${(err as Error).message}`);
  }
}

function parseValue<T>(path: string, value: unknown, schema: z.ZodType<T>): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new InvalidResponseError(path, result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  }
  return result.data;
}

function parseBody<T>(path: string, text: string, schema: z.ZodType<T>): T {
  return parseValue(path, parseJson(path, text), schema);
}

/** `runtime.GOOS` spelling of this platform. */
export function goOs(): string {
  return process.platform === 'win32' ? 'windows' : process.platform;
}

/** `runtime.GOARCH` spelling of this architecture. */
export function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}

function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
