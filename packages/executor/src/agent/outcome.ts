import { SandfleetError, type CancelReason } from '@sandfleet/protocol';
import type { CoordinatorClient, ExecutorJob, JobRequestOptions } from '../apiclient/client.js';
import { LogFlushError } from '../logs/log-stream.js';

/**
 * How a job ended, and how that is told to the coordinator. The job runner never throws for
 * anything the job did: it turns what happened into a JobOutcome here, and the agent reports it.
 */

export type { CancelReason };

/** The abort reason put on a job's AbortSignal. */
export class JobCanceledError extends SandfleetError {
  constructor(readonly reason: CancelReason, message: string) {
    super(message);
  }
}

/** The job cannot run on this executor at all: it fails permanently. */
export class JobUnsupportedError extends SandfleetError {
  constructor(message: string) {
    super(message);
  }
}

export type JobOutcome =
  | { status: 'completed' }
  /** Retryable: the instance may hand the job out again (markErrored). */
  | { status: 'errored'; message: string }
  /** Permanent (markFailed). */
  | { status: 'failed'; message: string }
  | { status: 'canceled'; reason: CancelReason; message: string };

/** The outcome of a job that stopped with `err` (or was aborted through `signal`). */
export function outcomeOf(err: unknown, signal: AbortSignal): JobOutcome {
  if (signal.aborted) {
    const reason = signal.reason;
    if (reason instanceof JobCanceledError) return { status: 'canceled', reason: reason.reason, message: reason.message };
    return { status: 'canceled', reason: 'shutdown', message: String(reason) };
  }
  if (err instanceof JobUnsupportedError) return { status: 'failed', message: err.message };
  if (err instanceof LogFlushError) return { status: 'errored', message: err.message };
  return { status: 'errored', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Tells the coordinator how the job ended. Lost jobs belong to someone else now: nothing is
 * reported. A user cancel is markFailed, which the instance records as canceled; timeouts and
 * shutdowns are retryable errors, as in Sourcegraph. The mark is retried until the instance
 * answers or fences the attempt out (JobFencedError); `options` runs before each retry.
 */
export async function reportOutcome(
  client: Pick<CoordinatorClient, 'markComplete' | 'markErrored' | 'markFailed'>,
  job: ExecutorJob,
  outcome: JobOutcome,
  options?: JobRequestOptions,
): Promise<void> {
  switch (outcome.status) {
    case 'completed':
      await client.markComplete(job, options);
      break;
    case 'errored':
      await client.markErrored(job, outcome.message, options);
      break;
    case 'failed':
      await client.markFailed(job, outcome.message, options);
      break;
    case 'canceled':
      if (outcome.reason === 'lost') break;
      if (outcome.reason === 'user') await client.markFailed(job, outcome.message, options);
      else await client.markErrored(job, outcome.message, options);
      break;
  }
}
