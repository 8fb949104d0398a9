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

export interface SendInit {
  auth: string;
  headers?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

export class Transport {
  readonly options: Readonly<CoordinatorClientOptions>;
  #extensions: ReadonlySet<string> = new Set();

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

  /** A job route, retried with backoff when the instance cannot be reached. */
  async jobRequest(job: JobRef, op: QueueOperation, body: unknown): Promise<string | undefined> {
    const path = executorRoutes.queue(job.queue, op);
    const attempts = this.options.retryAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request('POST', path, { auth: this.jobAuth(job), headers: this.jobHeaders(job), body });
      } catch (err) {
        if (!(err instanceof SandfleetError) || !err.retryable || attempt >= attempts) throw err;
        this.options.onRetry?.({ path, attempt, error: err });
        const delay = Math.min((this.options.retryBaseDelayMs ?? 250) * 2 ** (attempt - 1), 4_000);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
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
    try {
      response = await fetch(`${this.options.frontendUrl}${path}`, {
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

export function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidResponseError(path, `not JSON: ${(err as Error).message}`);
  }
}

export function parseValue<T>(path: string, value: unknown, schema: z.ZodType<T>): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new InvalidResponseError(path, result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  }
  return result.data;
}

export function parseBody<T>(path: string, text: string, schema: z.ZodType<T>): T {
  return parseValue(path, parseJson(path, text), schema);
}

function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
