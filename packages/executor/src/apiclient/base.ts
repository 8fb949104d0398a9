import { z } from 'zod';
import {
  EXECUTOR_NAME_HEADER,
  EXECUTOR_TOKEN_SCHEME,
  EXTENSIONS_HEADER,
  JOB_ID_HEADER,
  SandfleetError,
  executorRoutes,
  parseExtensions,
  type QueueOperation,
} from '@sandfleet/protocol';
import { normalizeKeys } from './go-json.js';
import type { HeartbeatTelemetry } from './telemetry.js';

/**
 * The transport of the executor's client for the instance (Sourcegraph or our coordinator):
 * `token-executor <password>` for test/auth, dequeue and heartbeat; `Bearer <job token>` plus the job-ID
 * and executor-name headers for everything about one job. Timeouts, retries, typed errors and the
 * extension set the instance offers live here; the routes themselves are in queue.ts and files.ts.
 */

/** The fields of a job that job routes need. */
export interface JobRef {
  readonly id: number;
  readonly token: string;
  /** The queue its job routes go to. */
  readonly queue: string;
}

/** Any status other than the 200/204 a route is expected to answer. The instance decided: not retryable. */
export class UnexpectedStatusError extends SandfleetError {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`unexpected status code ${status}`);
  }
}

/**
 * The instance says this attempt of the job is no longer ours: the job token is refused (401/403),
 * the job is gone (404, or Sourcegraph's 500 "unknown job"), or the agent learned from a heartbeat
 * that the instance no longer knows the job. Retrying cannot help; the attempt is over.
 */
export class JobFencedError extends UnexpectedStatusError {}

/** The request never got an HTTP answer (connection refused, reset, timeout); worth trying again. */
export class CoordinatorUnreachableError extends SandfleetError {
  constructor(readonly method: string, readonly path: string, cause: unknown) {
    super(`${method} ${path} failed: ${describeCause(cause)}`, { cause, retryable: true });
  }
}

/** A 200 answer whose body is not what the protocol says. */
export class InvalidResponseError extends SandfleetError {
  constructor(readonly path: string, readonly detail: string) {
    super(`invalid response from ${path}: ${detail}`);
  }
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
  /**
   * Attempts for job routes (log and mark calls) that fail without an answer or with a 5xx.
   * @default Infinity: a job's log and result are retried until the instance takes them or
   * fences the attempt out, so a coordinator outage loses nothing.
   */
  retryAttempts?: number;
  /** First retry delay in ms, doubled per attempt up to retryMaxDelayMs. @default 250 */
  retryBaseDelayMs?: number;
  /** Longest delay between two retries, in ms. @default 10_000 */
  retryMaxDelayMs?: number;
  /** Called before each retry, for logging. */
  onRetry?: (info: { path: string; attempt: number; error: Error }) => void;
  /** Called once per request when its answer's status arrives (or it fails without one), for logging. */
  onRequest?: (info: RequestRecord) => void;
}

/** One request as the executor's debug log shows it; `status` is absent when no answer came. */
export interface RequestRecord {
  method: string;
  path: string;
  status?: number;
  durationMs: number;
}

/** The connection settings of a client, taken from the executor's configuration. */
export function connectionOptions(config: Pick<CoordinatorClientOptions, 'frontendUrl' | 'frontendPassword' | 'executorName' | 'queueNames' | 'multiQueue'>) {
  const { frontendUrl, frontendPassword, executorName, queueNames, multiQueue } = config;
  return { frontendUrl, frontendPassword, executorName, queueNames, multiQueue };
}

export interface SendInit {
  auth: string;
  headers?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

/** Per-call options of a job route. */
export interface JobRequestOptions {
  /**
   * Runs before every retry (after the backoff delay); a throw counts as one more failed attempt.
   * The agent heartbeats here, so the instance hears about the job before it is marked.
   */
  beforeRetry?: () => Promise<void>;
  /** More headers, the same on every retry. */
  headers?: Record<string, string>;
}

export class Transport {
  readonly options: Readonly<CoordinatorClientOptions>;
  #extensions: ReadonlySet<string> = new Set();
  /** The attempts being tracked, by jobKey; aborting one fences it out (its job routes stop). */
  readonly #fences = new Map<string, AbortController>();

  constructor(options: CoordinatorClientOptions) {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(options.frontendUrl)) {
      throw new TypeError(`parse ${JSON.stringify(options.frontendUrl)}: missing protocol scheme`);
    }
    this.options = { ...options, frontendUrl: options.frontendUrl.replace(/\/+$/, '') };
  }

  /** Sandfleet extensions the instance offered in its latest answer (`X-Sandfleet-Extensions`). */
  get extensions(): ReadonlySet<string> {
    return this.#extensions;
  }

  executorAuth(): string {
    return `${EXECUTOR_TOKEN_SCHEME} ${this.options.frontendPassword}`;
  }

  jobAuth(job: Pick<JobRef, 'token'>): string {
    // Jobs from instances older than job tokens carry none; those accept the executor token.
    return job.token ? `Bearer ${job.token}` : this.executorAuth();
  }

  /** The job-ID and executor-name headers sent with every request about one job. */
  jobHeaders(job: Pick<JobRef, 'id'>): Record<string, string> {
    return { [JOB_ID_HEADER]: String(job.id), [EXECUTOR_NAME_HEADER]: this.options.executorName };
  }

  /** The fields every job route's body starts with. */
  jobBody(job: Pick<JobRef, 'id'>): { executorName: string; jobId: number } {
    return { executorName: this.options.executorName, jobId: job.id };
  }

  /** Starts tracking a job's attempt, so that fence() can stop its job routes. */
  openJob(job: Pick<JobRef, 'id' | 'queue'>): void {
    this.#fences.set(jobKey(job), new AbortController());
  }

  /** Stops every pending and future job route of the job with JobFencedError (see JobFencedError). */
  fence(job: Pick<JobRef, 'id' | 'queue'>, why: string): void {
    this.#fences.get(jobKey(job))?.abort(new JobFencedError(404, why, 'POST', executorRoutes.queue(job.queue, 'heartbeat')));
  }

  /** Forgets a job once the agent is done with it. */
  closeJob(job: Pick<JobRef, 'id' | 'queue'>): void {
    this.#fences.delete(jobKey(job));
  }

  /**
   * A job route, retried with backoff (retryBaseDelayMs doubling to retryMaxDelayMs) while the
   * instance cannot be reached or answers 5xx, until it answers or fences the attempt out
   * (JobFencedError). Repeating is safe for all but one route: log appends carry a seq the
   * instance deduplicates, updates replace, a repeated mark is answered as "not yours" (see
   * agent.ts), and an addExecutionLogEntry carries a key (extension `log-entry-key`) with which our
   * coordinator answers a repeat with the entry it made. A Sourcegraph instance ignores the key: a
   * repeated add whose first answer was lost adds a second entry there.
   */
  async jobRequest(job: JobRef, op: QueueOperation, body: unknown, options: JobRequestOptions = {}): Promise<string | undefined> {
    const path = executorRoutes.queue(job.queue, op);
    const attempts = this.options.retryAttempts ?? Number.POSITIVE_INFINITY;
    const fence = this.#fences.get(jobKey(job))?.signal;
    for (let attempt = 1; ; attempt++) {
      fence?.throwIfAborted();
      let failure: unknown;
      try {
        // A failing beforeRetry counts as one more failed attempt, whatever it threw.
        if (attempt > 1) await options.beforeRetry?.();
      } catch (err) {
        failure = err instanceof SandfleetError && err.retryable ? err : new CoordinatorUnreachableError('POST', path, err);
      }
      if (failure === undefined) {
        try {
          return await this.request('POST', path, { auth: this.jobAuth(job), headers: { ...this.jobHeaders(job), ...options.headers }, body, signal: fence });
        } catch (err) {
          failure = classifyJobFailure(err);
        }
      }
      if (fence?.aborted) throw fence.reason;
      if (!isRetryable(failure) || attempt >= attempts) throw failure;
      this.options.onRetry?.({ path, attempt, error: failure as Error });
      const delay = Math.min((this.options.retryBaseDelayMs ?? 250) * 2 ** Math.min(attempt - 1, 30), this.options.retryMaxDelayMs ?? 10_000);
      await sleep(delay, fence);
    }
  }

  /** Sends a request; 200 → body text, 204 → undefined, anything else → UnexpectedStatusError. */
  async request(method: string, path: string, init: SendInit): Promise<string | undefined> {
    const response = await this.send(method, path, init);
    const text = await response.text().catch((err: unknown) => {
      throw new CoordinatorUnreachableError(method, path, err);
    });
    if (response.status === 204) return undefined;
    if (response.status === 200) return text;
    throw new UnexpectedStatusError(response.status, text, method, path);
  }

  /** Sends a request and returns the response as it is, whatever its status. */
  async send(method: string, path: string, init: SendInit): Promise<Response> {
    const timeout = AbortSignal.timeout(init.timeoutMs ?? this.options.requestTimeoutMs ?? 30_000);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const headers: Record<string, string> = { Authorization: init.auth, ...init.headers };
    if (init.body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    const started = performance.now();
    const record = (status?: number) => this.options.onRequest?.({ method, path, ...(status === undefined ? {} : { status }), durationMs: Math.round(performance.now() - started) });
    try {
      response = await fetch(`${this.options.frontendUrl}${path}`, { method, headers, signal, ...requestBody(init.body, headers) });
      record(response.status);
    } catch (err) {
      record();
      // The caller's own abort is not "unreachable": let it surface as the AbortError it is.
      if (init.signal?.aborted) throw init.signal.reason ?? err;
      throw new CoordinatorUnreachableError(method, path, err);
    }
    // A proxy's 5xx says nothing about the instance behind it, so only real answers update the set.
    if (response.status < 500) this.#extensions = parseExtensions(response.headers.get(EXTENSIONS_HEADER));
    return response;
  }
}

/**
 * The body of a request. Bytes are a body already encoded as JSON (a log chunk): fetch would copy a
 * byte body, so they go as a one-chunk stream it writes as they are, with their length.
 */
function requestBody(body: unknown, headers: Record<string, string>): Pick<RequestInit, 'body'> & { duplex?: 'half' } {
  if (body === undefined) return {};
  if (!(body instanceof Uint8Array)) return { body: JSON.stringify(body) };
  headers['Content-Length'] = String(body.byteLength);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(body);
      controller.close();
    },
  });
  return { body: stream, duplex: 'half' };
}

export function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidResponseError(path, `not JSON: ${(err as Error).message}`);
  }
}

/** Validates a decoded answer, with keys matched as a Go peer would (see go-json.ts). */
export function parseValue<T>(path: string, value: unknown, schema: z.ZodType<T>): T {
  const result = schema.safeParse(normalizeKeys(value, schema));
  if (!result.success) {
    throw new InvalidResponseError(path, result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  }
  return result.data;
}

export function parseBody<T>(path: string, text: string, schema: z.ZodType<T>): T {
  return parseValue(path, parseJson(path, text), schema);
}

function jobKey(job: Pick<JobRef, 'id' | 'queue'>): string {
  return `${job.queue}/${job.id}`;
}

/** An answer that says the attempt is gone becomes JobFencedError; anything else is returned as is. */
function classifyJobFailure(err: unknown): unknown {
  if (!(err instanceof UnexpectedStatusError) || err instanceof JobFencedError) return err;
  const gone = err.status === 401 || err.status === 403 || err.status === 404 || (err.status >= 500 && err.body.includes('unknown job'));
  return gone ? new JobFencedError(err.status, err.body, err.method, err.path) : err;
}

/** No answer, or a 5xx (the instance or a proxy in front of it is in trouble): worth trying again. */
function isRetryable(err: unknown): boolean {
  if (err instanceof JobFencedError) return false;
  if (err instanceof UnexpectedStatusError) return err.status >= 500;
  return err instanceof SandfleetError && err.retryable;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
