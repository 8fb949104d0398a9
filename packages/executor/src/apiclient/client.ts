import type { Readable } from 'node:stream';
import type { ExecutionLogEntry } from '@sandfleet/protocol';
import { Transport, type CoordinatorClientOptions, type JobRef, type JobRequestOptions } from './base.js';
import { fileExists, getFile } from './files.js';
import * as queue from './queue.js';
import type { EncodedLogChunk, ExecutorJob, HeartbeatResult, LogChunk } from './queue.js';
import type { HeartbeatTelemetry } from './telemetry.js';

export {
  connectionOptions,
  CoordinatorUnreachableError,
  InvalidResponseError,
  JobFencedError,
  UnexpectedStatusError,
  type CoordinatorClientOptions,
  type JobRef,
  type JobRequestOptions,
  type RequestRecord,
} from './base.js';
export { LONG_POLL_GRACE_SECONDS, type EncodedLogChunk, type EncodedLogOut, type ExecutorJob, type HeartbeatResult, type LogChunk } from './queue.js';
export { goArch, goOs, type HeartbeatTelemetry } from './telemetry.js';

/**
 * The executor's client for the instance (Sourcegraph or our coordinator): one object for the agent,
 * the job runner and the CLI, over the transport in base.ts and the routes in queue.ts and files.ts.
 */
export class CoordinatorClient {
  readonly #transport: Transport;
  #telemetry: Partial<HeartbeatTelemetry>;

  constructor(options: CoordinatorClientOptions) {
    this.#transport = new Transport(options);
    this.#telemetry = { ...options.telemetry };
  }

  /** Sandfleet extensions the instance offered in its latest answer (`X-Sandfleet-Extensions`). */
  get extensions(): ReadonlySet<string> {
    return this.#transport.extensions;
  }

  supports(extension: string): boolean {
    return this.#transport.extensions.has(extension);
  }

  setTelemetry(telemetry: Partial<HeartbeatTelemetry>): void {
    this.#telemetry = { ...this.#telemetry, ...telemetry };
  }

  /** `GET /.executors/test/auth`; resolves on 200, throws UnexpectedStatusError otherwise. */
  async testAuth(signal?: AbortSignal): Promise<void> {
    await queue.testAuth(this.#transport, signal);
  }

  /**
   * Takes one job, or returns undefined when the queue(s) are empty (204). With `waitSeconds` > 0 and
   * an instance that offers long polls, the instance may hold the request up to that long.
   */
  dequeue(options: { waitSeconds?: number; signal?: AbortSignal } = {}): Promise<ExecutorJob | undefined> {
    return queue.dequeue(this.#transport, options);
  }

  /** Takes up to `maxJobs` jobs in one request if the instance offers `multi-job-dequeue`, else one. */
  dequeueUpTo(maxJobs: number, options: { waitSeconds?: number; signal?: AbortSignal } = {}): Promise<ExecutorJob[]> {
    return queue.dequeueUpTo(this.#transport, maxJobs, options);
  }

  /** Startup connectivity check: a heartbeat for no jobs (it also registers the executor). */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.heartbeat([], signal);
  }

  /** Reports the running jobs (by uid) and learns which the instance still knows and which to cancel. */
  heartbeat(jobUids: readonly string[], signal?: AbortSignal): Promise<HeartbeatResult> {
    return queue.heartbeat(this.#transport, this.#telemetry, jobUids, signal);
  }

  /** Starts a log entry; returns its ID (1-based index on Sourcegraph). */
  addExecutionLogEntry(job: JobRef, entry: ExecutionLogEntry): Promise<number> {
    return queue.addExecutionLogEntry(this.#transport, job, entry);
  }

  /** Replaces a log entry (Sourcegraph's way: the whole `out` every time). */
  updateExecutionLogEntry(job: JobRef, entryId: number, entry: ExecutionLogEntry): Promise<void> {
    return queue.updateExecutionLogEntry(this.#transport, job, entryId, entry);
  }

  /** Appends one chunk to a log entry (extension `log-append`). A repeated `seq` is ignored by the instance. */
  appendExecutionLog(job: JobRef, chunk: LogChunk): Promise<void> {
    return queue.appendExecutionLog(this.#transport, job, chunk);
  }

  /** appendExecutionLog with `out` already encoded as JSON, so a large chunk is not copied again. */
  appendEncodedExecutionLog(job: JobRef, chunk: EncodedLogChunk): Promise<void> {
    return queue.appendEncodedExecutionLog(this.#transport, job, chunk);
  }

  markComplete(job: JobRef, options?: JobRequestOptions): Promise<void> {
    return queue.markComplete(this.#transport, job, options);
  }

  /** Retryable failure. */
  markErrored(job: JobRef, errorMessage: string, options?: JobRequestOptions): Promise<void> {
    return queue.markWithError(this.#transport, job, 'markErrored', errorMessage, options);
  }

  /** Permanent failure; for a job the instance asked to cancel it becomes `canceled`. */
  markFailed(job: JobRef, errorMessage: string, options?: JobRequestOptions): Promise<void> {
    return queue.markWithError(this.#transport, job, 'markFailed', errorMessage, options);
  }

  /** Starts tracking a job's attempt; its job routes retry until answered or fenced out. */
  openJob(job: Pick<JobRef, 'id' | 'queue'>): void {
    this.#transport.openJob(job);
  }

  /** The attempt is gone (a heartbeat no longer lists it): its job routes stop with JobFencedError. */
  fenceJob(job: Pick<JobRef, 'id' | 'queue'>, why: string): void {
    this.#transport.fence(job, why);
  }

  /** Forgets a job once it has been reported or dropped. */
  closeJob(job: Pick<JobRef, 'id' | 'queue'>): void {
    this.#transport.closeJob(job);
  }

  /** Streams a workspace file from the files API (`GET /.executors/files/<bucket>/<key>`). */
  getFile(job: JobRef, bucket: string, key: string, signal?: AbortSignal): Promise<Readable> {
    return getFile(this.#transport, job, bucket, key, signal);
  }

  /** `HEAD /.executors/files/<bucket>/<key>`: 200 → true, 404 → false. */
  fileExists(job: JobRef, bucket: string, key: string, signal?: AbortSignal): Promise<boolean> {
    return fileExists(this.#transport, job, bucket, key, signal);
  }

  /** The job-token headers, also added by the git proxy. */
  jobHeaders(job: Pick<JobRef, 'id' | 'token'>): Record<string, string> {
    return { Authorization: this.#transport.jobAuth(job), ...this.#transport.jobHeaders(job) };
  }
}
