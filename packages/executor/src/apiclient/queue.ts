import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import {
  EXTENSION_LONG_POLL,
  EXTENSION_MULTI_JOB_DEQUEUE,
  HeartbeatResponse,
  LOG_ENTRY_KEY_HEADER,
  MAX_DEQUEUE_JOBS,
  MAX_DEQUEUE_WAIT_SECONDS,
  MAX_JOBS_HEADER,
  WAIT_HEADER,
  WireJob,
  executorRoutes,
  groupRecordUidsByQueue,
  recordUid,
  type AddExecutionLogEntryRequestBody,
  type AppendExecutionLogRequestBody,
  type DequeueRequestBody,
  type ExecutionLogEntry,
  type HeartbeatRequestBody,
  type MarkCompleteRequestBody,
  type MarkErroredRequestBody,
  type UpdateExecutionLogEntryRequestBody,
} from '@sandfleet/protocol';
import { EXECUTOR_VERSION } from '../version.js';
import { InvalidResponseError, parseBody, parseJson, parseValue, type JobRef, type JobRequestOptions, type Transport } from './base.js';
import { heartbeatTelemetryFields, type HeartbeatTelemetry } from './telemetry.js';

/**
 * The queue routes: dequeue and heartbeat (executor token), log entries and marks (job token).
 * Every body is typed by the protocol's request schema.
 */

/** `GET /.executors/test/auth`: the executor token is accepted when this resolves. */
export async function testAuth(transport: Transport, signal?: AbortSignal): Promise<void> {
  await transport.request('GET', executorRoutes.testAuth, { auth: transport.executorAuth(), signal });
}

/** A dequeued job with the two things the executor derives from where it came from. */
export type ExecutorJob = WireJob & {
  /** The queue its job routes go to: the configured queue, or `queue` of a multi-queue dequeue. */
  readonly queue: string;
  /** The ID used in heartbeats: `"<id>"` (single queue) or `"<id>-<queue>"` (multi-queue). */
  readonly uid: string;
};

export interface HeartbeatResult {
  knownIds: string[];
  cancelIds: string[];
}

/** Extra seconds a long-poll dequeue may take beyond the wait it asked for, before the client gives up. */
export const LONG_POLL_GRACE_SECONDS = 5;

/**
 * Takes one job, or returns undefined when the queue(s) are empty (204). With `waitSeconds` > 0 and
 * an instance that offers long polls, the instance may hold the request up to that long.
 */
export async function dequeue(
  transport: Transport,
  options: { waitSeconds?: number; signal?: AbortSignal } = {},
): Promise<ExecutorJob | undefined> {
  return (await dequeueUpTo(transport, 1, options))[0];
}

/**
 * Takes up to `maxJobs` jobs in one request when the instance offers `multi-job-dequeue`, else one
 * (as `dequeue`). Empty when the queue(s) are empty.
 */
export async function dequeueUpTo(
  transport: Transport,
  maxJobs: number,
  options: { waitSeconds?: number; signal?: AbortSignal } = {},
): Promise<ExecutorJob[]> {
  const { multiQueue, queueNames, executorName, resources } = transport.options;
  const path = multiQueue ? executorRoutes.multiDequeue : executorRoutes.queue(queueNames[0]!, 'dequeue');
  const body: DequeueRequestBody = {
    ...(multiQueue ? { queues: [...queueNames] } : {}),
    executorName,
    version: EXECUTOR_VERSION,
    ...(resources ? { numCPUs: resources.numCPUs, memory: resources.memory, diskSpace: resources.diskSpace } : {}),
  };
  const wait = Math.min(options.waitSeconds ?? 0, MAX_DEQUEUE_WAIT_SECONDS);
  const longPoll = wait > 0 && transport.extensions.has(EXTENSION_LONG_POLL);
  const several = Math.min(Math.floor(maxJobs), MAX_DEQUEUE_JOBS);
  const multiJob = several > 1 && transport.extensions.has(EXTENSION_MULTI_JOB_DEQUEUE);
  const response = await transport.request('POST', path, {
    auth: transport.executorAuth(),
    body,
    signal: options.signal,
    headers: { ...(longPoll ? { [WAIT_HEADER]: String(wait) } : {}), ...(multiJob ? { [MAX_JOBS_HEADER]: String(several) } : {}) },
    timeoutMs: longPoll ? (wait + LONG_POLL_GRACE_SECONDS) * 1000 : undefined,
  });
  if (response === undefined) return [];
  // An instance that ignored the header (an older coordinator behind the same name) answers one job.
  const parsed = multiJob ? parseBody(path, response, z.union([z.array(WireJob).min(1).max(several), WireJob])) : parseBody(path, response, WireJob);
  const jobs = Array.isArray(parsed) ? parsed : [parsed];
  return jobs.map((job) => {
    const queue = multiQueue ? job.queue : queueNames[0]!;
    if (!queue) throw new InvalidResponseError(path, 'a multi-queue dequeue answered a job without "queue"');
    return { ...job, queue, uid: recordUid({ id: job.id, queue: multiQueue ? queue : undefined }) };
  });
}

/** Reports the running jobs (by uid) and learns which the instance still knows and which to cancel. */
export async function heartbeat(
  transport: Transport,
  telemetry: Partial<HeartbeatTelemetry>,
  jobUids: readonly string[],
  signal?: AbortSignal,
): Promise<HeartbeatResult> {
  const { multiQueue, queueNames, executorName } = transport.options;
  const fields = heartbeatTelemetryFields(telemetry);
  let path: string;
  let body: HeartbeatRequestBody;
  if (multiQueue) {
    path = executorRoutes.multiHeartbeat;
    body = { executorName, queueNames: [...queueNames], jobIdsByQueue: groupRecordUidsByQueue(jobUids), ...fields };
  } else {
    path = executorRoutes.queue(queueNames[0]!, 'heartbeat');
    // The V1 shape with int IDs and version "V2", which every instance since 4.3 understands.
    body = { version: 'V2', executorName, jobIds: jobUids.map(Number), ...fields };
  }
  const response = await transport.request('POST', path, { auth: transport.executorAuth(), body, signal });
  const json = response === undefined ? {} : parseJson(path, response);
  // Instances before 4.3 answered a bare list of known IDs.
  const parsed = Array.isArray(json) ? { knownIds: json, cancelIds: [] } : parseValue(path, json, HeartbeatResponse);
  return {
    knownIds: (parsed.knownIds ?? []).map(String),
    cancelIds: (parsed.cancelIds ?? []).map(String),
  };
}

/**
 * Starts a log entry; returns its ID (1-based index on Sourcegraph). The entry's key is drawn once,
 * so every retry of this add names the same entry (extension `log-entry-key`).
 */
export async function addExecutionLogEntry(transport: Transport, job: JobRef, entry: ExecutionLogEntry): Promise<number> {
  const path = executorRoutes.queue(job.queue, 'addExecutionLogEntry');
  const body: AddExecutionLogEntryRequestBody = { ...transport.jobBody(job), ...entry };
  const headers = { [LOG_ENTRY_KEY_HEADER]: randomBytes(16).toString('base64url') };
  const response = await transport.jobRequest(job, 'addExecutionLogEntry', body, { headers });
  return parseBody(path, response ?? 'null', z.number().int());
}

/** Replaces a log entry (Sourcegraph's way: the whole `out` every time). */
export async function updateExecutionLogEntry(transport: Transport, job: JobRef, entryId: number, entry: ExecutionLogEntry): Promise<void> {
  const body: UpdateExecutionLogEntryRequestBody = { ...transport.jobBody(job), entryId, ...entry };
  await transport.jobRequest(job, 'updateExecutionLogEntry', body);
}

/** The part of an append request that is about the chunk, not the job. */
export type LogChunk = Omit<AppendExecutionLogRequestBody, 'executorName' | 'jobId'>;

/** Appends one chunk to a log entry (extension `log-append`). A repeated `seq` is ignored by the instance. */
export async function appendExecutionLog(transport: Transport, job: JobRef, chunk: LogChunk): Promise<void> {
  const body: AppendExecutionLogRequestBody = { ...transport.jobBody(job), ...chunk };
  await transport.jobRequest(job, 'appendExecutionLog', body);
}

/**
 * A chunk's `out` already encoded: the UTF-8 of a JSON string's contents, without the quotes. It
 * frames itself into the request body, so a large chunk is not copied into a string and back.
 */
export interface EncodedLogOut {
  /** The body bytes: `head`, then the encoded text, then `tail` (it may reuse the chunk's own memory). */
  frame(head: Uint8Array, tail: Uint8Array): Uint8Array;
}

/** An append whose `out` is already encoded (see EncodedLogOut). */
export type EncodedLogChunk = Omit<LogChunk, 'out'> & { out: EncodedLogOut };

/** appendExecutionLog with a pre-encoded `out`; the body is the same JSON, with `out` last. */
export async function appendEncodedExecutionLog(transport: Transport, job: JobRef, chunk: EncodedLogChunk): Promise<void> {
  const { out, ...fields } = chunk;
  const { executorName, jobId } = transport.jobBody(job);
  const { entryId, seq, exitCode, durationMs } = fields;
  const head = JSON.stringify({ executorName, jobId, entryId, seq, exitCode, durationMs }).slice(0, -1);
  const body = out.frame(Buffer.from(`${head},"out":"`), Buffer.from('"}'));
  await transport.jobRequest(job, 'appendExecutionLog', body);
}

export async function markComplete(transport: Transport, job: JobRef, options?: JobRequestOptions): Promise<void> {
  const body: MarkCompleteRequestBody = transport.jobBody(job);
  await transport.jobRequest(job, 'markComplete', body, options);
}

/** `markErrored` (retryable failure) or `markFailed` (permanent; a job asked to cancel becomes `canceled`). */
export async function markWithError(
  transport: Transport,
  job: JobRef,
  op: 'markErrored' | 'markFailed',
  errorMessage: string,
  options?: JobRequestOptions,
): Promise<void> {
  const body: MarkErroredRequestBody = { ...transport.jobBody(job), errorMessage };
  await transport.jobRequest(job, op, body, options);
}
