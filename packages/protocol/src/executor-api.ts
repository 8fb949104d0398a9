import { z } from 'zod';
import { ExecutionLogEntry } from './log-entry.js';

/**
 * Request bodies of the executor API. Like Go's decoder they ignore unknown fields;
 * unlike it they reject wrong types with a message instead of zero values.
 */
export const DequeueRequest = z.object({
  queues: z.array(z.string()).nullish(),
  executorName: z.string().default(''),
  version: z.string().default(''),
  numCPUs: z.number().int().optional(),
  memory: z.string().optional(),
  diskSpace: z.string().optional(),
});
export type DequeueRequest = z.infer<typeof DequeueRequest>;

const JobIdList = z.array(z.union([z.number().int(), z.string()])).nullish();

export const QueueJobIds = z.object({
  queueName: z.string(),
  jobIds: JobIdList,
});

export const HeartbeatRequest = z.object({
  version: z.string().optional(),
  executorName: z.string().default(''),
  jobIds: JobIdList,
  jobIdsByQueue: z.array(QueueJobIds).nullish(),
  queueNames: z.array(z.string()).nullish(),
  os: z.string().optional(),
  architecture: z.string().optional(),
  dockerVersion: z.string().optional(),
  executorVersion: z.string().optional(),
  gitVersion: z.string().optional(),
  igniteVersion: z.string().optional(),
  srcCliVersion: z.string().optional(),
  prometheusMetrics: z.string().optional(),
  /** Sandfleet extension: the sandbox runtime the executor runs steps in (e.g. `bwrap`). Other peers ignore it. */
  runtime: z.string().optional(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

export const HeartbeatResponse = z.object({
  knownIds: z.array(z.union([z.string(), z.number()])).nullish(),
  cancelIds: z.array(z.union([z.string(), z.number()])).nullish(),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

export const JobOperationRequest = z.object({
  executorName: z.string().default(''),
  jobId: z.number().int(),
});

export const AddExecutionLogEntryRequest = JobOperationRequest.extend(ExecutionLogEntry.shape);
export type AddExecutionLogEntryRequest = z.infer<typeof AddExecutionLogEntryRequest>;

export const UpdateExecutionLogEntryRequest = AddExecutionLogEntryRequest.extend({
  entryId: z.number().int(),
});
export type UpdateExecutionLogEntryRequest = z.infer<typeof UpdateExecutionLogEntryRequest>;

export const MarkCompleteRequest = JobOperationRequest;
export const MarkErroredRequest = JobOperationRequest.extend({ errorMessage: z.string().default('') });
export type MarkErroredRequest = z.infer<typeof MarkErroredRequest>;

/**
 * Sandfleet extension: append a chunk of output to a log entry without resending what is stored.
 * `seq` numbers the chunks of one entry from 0; a repeated `seq` is ignored, so retries are safe.
 * The final chunk may carry `exitCode` and `durationMs`.
 */
export const AppendExecutionLogRequest = JobOperationRequest.extend({
  entryId: z.number().int(),
  seq: z.number().int().nonnegative(),
  out: z.string().default(''),
  exitCode: z.number().int().nullish(),
  durationMs: z.number().int().nullish(),
});
export type AppendExecutionLogRequest = z.infer<typeof AppendExecutionLogRequest>;

/**
 * What a client sends: the input side of the schemas above (defaulted fields optional), so a field
 * renamed or retyped on one side fails the type check on the other.
 */
export type DequeueRequestBody = z.input<typeof DequeueRequest>;
export type HeartbeatRequestBody = z.input<typeof HeartbeatRequest>;
export type AddExecutionLogEntryRequestBody = z.input<typeof AddExecutionLogEntryRequest>;
export type UpdateExecutionLogEntryRequestBody = z.input<typeof UpdateExecutionLogEntryRequest>;
export type AppendExecutionLogRequestBody = z.input<typeof AppendExecutionLogRequest>;
export type MarkCompleteRequestBody = z.input<typeof MarkCompleteRequest>;
export type MarkErroredRequestBody = z.input<typeof MarkErroredRequest>;
