import type { ExecutorRecord, Job, JobAttempt } from '@sandfleet/db';
import { executorCompatibility } from '../executor-compatibility.js';
import { COORDINATOR_VERSION } from '../version.js';

/** The job as the user API shows it: the stored job without its spec, times as ISO strings. */
export function toJobView(job: Job) {
  return {
    id: job.id,
    queue: job.queue,
    state: job.state,
    priority: job.priority,
    repositoryName: job.repositoryName,
    commit: job.spec.commit,
    failureMessage: job.failureMessage,
    cancel: job.cancel,
    attempt: job.attempt,
    numResets: job.numResets,
    numFailures: job.numFailures,
    workerHostname: job.workerHostname,
    retryOf: job.retryOf,
    queuedAt: job.queuedAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    lastHeartbeatAt: job.lastHeartbeatAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}
export type JobView = ReturnType<typeof toJobView>;

export function toAttemptView(attempt: JobAttempt) {
  return {
    attempt: attempt.attempt,
    executorHostname: attempt.executorHostname,
    startedAt: attempt.startedAt.toISOString(),
    finishedAt: attempt.finishedAt?.toISOString() ?? null,
    outcome: attempt.outcome,
    resetReason: attempt.resetReason,
  };
}

/**
 * An executor as the user API shows it; `active` = heartbeat within `activeMs` (3 × 5 s);
 * `compatibility` compares its version with this coordinator's (executor-compatibility.ts).
 */
export function toExecutorView(executor: ExecutorRecord, activeMs: number, now = Date.now()) {
  const { prometheusMetrics: _metrics, id: _id, ...rest } = executor;
  const active = now - executor.lastSeenAt.getTime() <= activeMs;
  return {
    ...rest,
    firstSeenAt: executor.firstSeenAt.toISOString(),
    lastSeenAt: executor.lastSeenAt.toISOString(),
    active,
    compatibility: executorCompatibility(executor.executorVersion, COORDINATOR_VERSION, active),
  };
}
export type ExecutorView = ReturnType<typeof toExecutorView>;
