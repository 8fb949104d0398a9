import type { ExecutorRecord, Job } from '@sandfleet/db';

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
    queuedAt: job.queuedAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    lastHeartbeatAt: job.lastHeartbeatAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}
export type JobView = ReturnType<typeof toJobView>;

/** An executor as the user API shows it; `active` = heartbeat within `activeMs` (3 × 5 s). */
export function toExecutorView(executor: ExecutorRecord, activeMs: number, now = Date.now()) {
  const { prometheusMetrics: _metrics, id: _id, ...rest } = executor;
  return {
    ...rest,
    firstSeenAt: executor.firstSeenAt.toISOString(),
    lastSeenAt: executor.lastSeenAt.toISOString(),
    active: now - executor.lastSeenAt.getTime() <= activeMs,
  };
}
export type ExecutorView = ReturnType<typeof toExecutorView>;
