import { Hono, type Context } from 'hono';
import {
  DequeueRequest,
  EXTENSION_LOG_APPEND,
  EXTENSION_LOG_ENTRY_KEY,
  EXTENSION_LONG_POLL,
  EXTENSION_MULTI_JOB_DEQUEUE,
  EXTENSIONS_HEADER,
  HeartbeatRequest,
  InvalidVersionError,
  LOG_ENTRY_KEY_HEADER,
  LOG_ENTRY_KEY_PATTERN,
  MAX_DEQUEUE_JOBS,
  MAX_DEQUEUE_WAIT_SECONDS,
  MAX_JOBS_HEADER,
  type QueueOperation,
  WAIT_HEADER,
  executorRoutePatterns as routes,
  invalidQueueNamesMessage,
  recordUid,
  supportsJobPayloadV2,
  unknownQueueNames,
} from '@sandfleet/protocol';
import {
  addLogEntry,
  appendLogChunk,
  dequeueJobs,
  getJob,
  heartbeatJobs,
  markComplete,
  markErrored,
  markFailed,
  queuesWithWaitingJobs,
  updateLogEntry,
  upsertExecutorHeartbeat,
  type Database,
  type FinishAnnouncement,
} from '@sandfleet/db';
import { AddLogEntryBody, AppendLogBody, MarkCompleteBody, MarkErroredBody, UpdateLogEntryBody } from './request-schemas.js';
import type { AppDeps } from '../deps.js';
import { HttpError, httpErrorResponse, jsonError } from '../http/errors.js';
import { executorTokenAuth, jobTokenAuth, type ExecutorApiEnv, type JobCaller } from './auth.js';
import { readJsonBody } from '../http/body.js';
import { QueuePicker } from './queue-picker.js';
import { toWireJob } from './wire-job.js';
import { gitProxyRoutes } from './git-proxy.js';
import { executorApiRequestMetrics } from './request-metrics.js';
import { pickupStages } from '../jobs/pickup-timeline.js';

const WORKER_HOSTNAME_EMPTY = 'worker hostname cannot be empty';

/** The executor API under `/.executors/` (Sourcegraph's routes), plus the negotiated extensions. */
export function executorApiRoutes(deps: AppDeps): Hono<ExecutorApiEnv> {
  const { config, database } = deps;
  const db = database.db;
  const picker = new QueuePicker(config.queues.settings);
  const app = new Hono<ExecutorApiEnv>();
  const executorAuth = executorTokenAuth(deps.executorSecrets, config.executorAccessToken);

  app.use('*', executorApiRequestMetrics(deps.metrics));
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set(EXTENSIONS_HEADER, `${EXTENSION_LONG_POLL}, ${EXTENSION_LOG_APPEND}, ${EXTENSION_LOG_ENTRY_KEY}, ${EXTENSION_MULTI_JOB_DEQUEUE}`);
  });
  app.onError((err, c) => {
    if (err instanceof HttpError) return httpErrorResponse(c, err);
    // The cause stays in the log: database text is no answer for a client.
    deps.log.error({ err, path: c.req.path }, 'executor API handler failed');
    return jsonError(c, 500, 'internal error');
  });

  app.get(routes.testAuth, executorAuth, (c) => c.text('ok'));

  // Multi-queue routes come first: "dequeue" and "heartbeat" are not queue names.
  app.post(routes.multiDequeue, executorAuth, async (c) => {
    const body = await readJsonBody(c, DequeueRequest);
    const v2 = checkExecutor(body.executorName, body.version);
    const queues = body.queues ?? [];
    if (queues.length === 0) return c.body(null, 204);
    const invalid = unknownQueueNames(queues, config.queues.names);
    if (invalid.length > 0) throw new HttpError(500, invalidQueueNamesMessage(invalid, config.queues.names));
    const maxJobs = maxJobsOf(c);
    const claimed = await withLongPoll(c, queues, async () => {
      const queue = picker.pick(await queuesWithWaitingJobs(db, queues));
      if (!queue) return undefined;
      const jobs = await dequeueJobs(db, { queue, executorName: body.executorName, maxJobs: maxJobs ?? 1 });
      if (jobs.length === 0) return undefined;
      picker.recordDequeue(queue);
      return { jobs, queue };
    });
    if (!claimed) return c.body(null, 204);
    for (const claim of claimed.jobs) deps.metrics.dequeued(claimed.queue, claim.job);
    const wire = claimed.jobs.map((j) => toWireJob(j.job, j.token, { v2, queue: claimed.queue }));
    return c.json(maxJobs === undefined ? wire[0] : wire);
  });

  app.post(routes.multiHeartbeat, executorAuth, async (c) => {
    const body = await readJsonBody(c, HeartbeatRequest);
    if (body.executorName === '') throw new HttpError(500, WORKER_HOSTNAME_EMPTY);
    const queueNames = body.queueNames ?? [];
    if (queueNames.length === 0) throw new HttpError(500, 'queueNames must be set for multi-queue heartbeats');
    const entries = body.jobIdsByQueue ?? [];
    const unsupported = entries.map((e) => e.queueName).filter((q) => !queueNames.includes(q));
    if (unsupported.length > 0) {
      throw new HttpError(500, `unsupported queue name(s) '${unsupported.join(', ')}' submitted in queueJobIds, executor is configured for queues '${queueNames.join(', ')}'`);
    }
    await recordHeartbeat(deps, body, { queueNames });
    const knownIds: string[] = [];
    const cancelIds: string[] = [];
    for (const entry of entries) {
      const result = await heartbeatJobs(db, { executorName: body.executorName, queue: entry.queueName, jobIds: numericIds(entry.jobIds) });
      knownIds.push(...result.knownIds.map((id) => recordUid({ id, queue: entry.queueName })));
      cancelIds.push(...result.cancelIds.map((id) => recordUid({ id, queue: entry.queueName })));
    }
    return c.json({ knownIds, cancelIds });
  });

  const queueRoute = (op: QueueOperation) => routes.queue(op, config.queues.names);
  const queueOf = (c: Context) => c.req.param('queueName') ?? '';
  const jobAuth = jobTokenAuth(database, deps.executorSecrets, config.executorAccessToken, { kind: 'queue', queue: queueOf });

  app.post(queueRoute('dequeue'), executorAuth, async (c) => {
    const queue = queueOf(c);
    const body = await readJsonBody(c, DequeueRequest);
    const v2 = checkExecutor(body.executorName, body.version);
    const maxJobs = maxJobsOf(c);
    const claimed = await withLongPoll(c, [queue], async () => {
      const jobs = await dequeueJobs(db, { queue, executorName: body.executorName, maxJobs: maxJobs ?? 1 });
      return jobs.length > 0 ? jobs : undefined;
    });
    if (!claimed) return c.body(null, 204);
    for (const claim of claimed) deps.metrics.dequeued(queue, claim.job);
    const wire = claimed.map((j) => toWireJob(j.job, j.token, { v2 }));
    return c.json(maxJobs === undefined ? wire[0] : wire);
  });

  app.post(queueRoute('heartbeat'), executorAuth, async (c) => {
    const queue = queueOf(c);
    const body = await readJsonBody(c, HeartbeatRequest);
    if (body.executorName === '') throw new HttpError(500, WORKER_HOSTNAME_EMPTY);
    await recordHeartbeat(deps, body, { queueName: queue });
    const result = await heartbeatJobs(db, { executorName: body.executorName, queue, jobIds: numericIds(body.jobIds) });
    return c.json({ knownIds: result.knownIds.map(String), cancelIds: result.cancelIds.map(String) });
  });

  app.post(queueRoute('addExecutionLogEntry'), jobAuth, async (c) => {
    const body = await readJsonBody(c, AddLogEntryBody);
    const caller = await callerFor(c, db, body);
    const { executorName: _e, jobId: _j, ...entry } = body;
    const clientKey = logEntryKeyOf(c);
    const index = await addLogEntry(db, { jobId: caller.jobId, attempt: caller.attempt, executorName: caller.executorName, entry, clientKey, maxJobLogBytes: config.maxLogBytesPerJob });
    if (index === undefined) throw new HttpError(500, 'unknown job');
    return c.json(index);
  });

  app.post(queueRoute('updateExecutionLogEntry'), jobAuth, async (c) => {
    const body = await readJsonBody(c, UpdateLogEntryBody);
    const caller = await callerFor(c, db, body);
    const { executorName: _e, jobId: _j, entryId, ...entry } = body;
    const ok = await updateLogEntry(db, { jobId: caller.jobId, attempt: caller.attempt, executorName: caller.executorName, entryId, entry, maxJobLogBytes: config.maxLogBytesPerJob });
    if (!ok) throw new HttpError(500, 'unknown job');
    return c.body(null, 204);
  });

  app.post(queueRoute('appendExecutionLog'), jobAuth, async (c) => {
    const body = await readJsonBody(c, AppendLogBody);
    const caller = await callerFor(c, db, body);
    const ok = await appendLogChunk(db, {
      jobId: caller.jobId,
      attempt: caller.attempt,
      executorName: caller.executorName,
      entryId: body.entryId,
      seq: body.seq,
      out: body.out,
      exitCode: body.exitCode ?? undefined,
      durationMs: body.durationMs ?? undefined,
      maxJobLogBytes: config.maxLogBytesPerJob,
    });
    if (!ok) throw new HttpError(500, 'unknown job');
    return c.body(null, 204);
  });

  const finalRoute = (op: 'markComplete' | 'markErrored' | 'markFailed') =>
    app.post(queueRoute(op), jobAuth, async (c) => {
      const queue = queueOf(c);
      const body = await readJsonBody(c, op === 'markComplete' ? MarkCompleteBody : MarkErroredBody);
      const caller = await callerFor(c, db, body);
      const target = { jobId: caller.jobId, queue, executorName: caller.executorName, attempt: caller.attempt };
      const message = 'errorMessage' in body ? String(body.errorMessage) : '';
      const maxRetries = config.queues.settings[queue]?.maxRetries ?? 0;
      const finished =
        op === 'markComplete'
          ? await markComplete(db, target)
          : op === 'markErrored'
            ? await markErrored(db, { ...target, errorMessage: message, maxRetries })
            : await markFailed(db, { ...target, errorMessage: message });
      if (!finished) return c.json(null, 404);
      deps.metrics.finished(queue, op);
      observePickupTimeline(deps, target, finished);
      return c.body(null, 204);
    });
  finalRoute('markComplete');
  finalRoute('markErrored');
  finalRoute('markFailed');

  app.route(routes.git, gitProxyRoutes(deps));
  return app;

  /** Holds a dequeue open for up to the negotiated wait, retrying whenever a job may be there. */
  async function withLongPoll<T>(c: Context, queues: readonly string[], attempt: () => Promise<T | undefined>): Promise<T | undefined> {
    const waitSeconds = Math.min(Number(c.req.header(WAIT_HEADER) ?? 0) || 0, MAX_DEQUEUE_WAIT_SECONDS);
    if (waitSeconds <= 0) return attempt();
    const deadline = Date.now() + waitSeconds * 1000;
    const watch = deps.waiter.watch(queues);
    let result: T | undefined;
    try {
      for (;;) {
        result = await attempt();
        if (result !== undefined) return result;
        const left = deadline - Date.now();
        if (left <= 0 || c.req.raw.signal.aborted) return undefined;
        // Jobs no notification announces are found by the waiter's periodic re-check (long-poll.ts).
        await watch.wait(left, c.req.raw.signal);
      }
    } finally {
      // Leaving with a job passes the wake on: there may be more jobs than wake-ups.
      watch.close(result !== undefined);
    }
  }
}

function checkExecutor(executorName: string, version: string): boolean {
  if (executorName === '') throw new HttpError(500, WORKER_HOSTNAME_EMPTY);
  try {
    return supportsJobPayloadV2(version);
  } catch (err) {
    if (err instanceof InvalidVersionError) throw new HttpError(500, err.message);
    throw err;
  }
}

/**
 * The job a request may act on is the one its token names; a body naming another job or executor
 * is refused rather than trusted. With the shared secret the body names the job (the header, when
 * sent, must agree) and the write is fenced to the job's current attempt and owner.
 */
async function callerFor(c: Context<ExecutorApiEnv>, db: Database['db'], body: { jobId: number; executorName: string }): Promise<JobCaller & { jobId: number }> {
  const caller = c.get('caller');
  if (caller.viaAccessToken) {
    if (caller.jobId !== undefined && caller.jobId !== body.jobId) throw new HttpError(403, 'invalid token', 'text');
    const executorName = body.executorName || caller.executorName;
    if (executorName === '') throw new HttpError(400, WORKER_HOSTNAME_EMPTY, 'text');
    const job = await getJob(db, body.jobId);
    return { ...caller, jobId: body.jobId, attempt: job?.attempt ?? -1, executorName };
  }
  if (body.jobId !== caller.jobId || (body.executorName !== '' && body.executorName !== caller.executorName)) {
    throw new HttpError(403, 'invalid token', 'text');
  }
  return { ...caller, jobId: caller.jobId };
}

function numericIds(ids: ReadonlyArray<number | string> | null | undefined): number[] {
  return (ids ?? []).map((id) => Number(id)).filter((id) => Number.isSafeInteger(id));
}

async function recordHeartbeat(deps: AppDeps, body: HeartbeatRequest, queues: { queueName?: string; queueNames?: string[] }) {
  try {
    // The heartbeat's telemetry fields are the registry's fields; absent ones are stored empty.
    const { executorName, version: _v, jobIds: _j, jobIdsByQueue: _q, queueNames: _n, ...telemetry } = body;
    await upsertExecutorHeartbeat(deps.database.db, { hostname: executorName, ...queues, ...telemetry });
  } catch (err) {
    // Sourcegraph only logs this: a heartbeat must still report known and canceled jobs.
    deps.log.warn({ err, executor: body.executorName }, 'failed to record executor heartbeat');
  }
}

/**
 * Observes a finished attempt's pickup timeline, read with the mark's announcement. A failure is
 * logged and does not undo the mark, which has committed, nor fail the request.
 */
function observePickupTimeline(deps: AppDeps, target: { jobId: number; queue: string }, finished: FinishAnnouncement): void {
  try {
    if (finished.timelineError) throw finished.timelineError;
    const stages = finished.timeline && pickupStages(finished.timeline);
    if (stages) deps.metrics.attemptFinished(target.queue, stages);
  } catch (err) {
    deps.log.warn({ err, jobId: target.jobId }, 'could not read the job\'s pickup timeline');
  }
}

/** The entry's idempotency key (extension `log-entry-key`), if the executor sent one. */
function logEntryKeyOf(c: Context): string | undefined {
  const key = c.req.header(LOG_ENTRY_KEY_HEADER);
  if (key === undefined) return undefined;
  if (!LOG_ENTRY_KEY_PATTERN.test(key)) throw new HttpError(400, `${LOG_ENTRY_KEY_HEADER} must be 16 to 64 characters of A-Z, a-z, 0-9, _ and -`);
  return key;
}

/**
 * How many jobs the executor takes at most (extension `multi-job-dequeue`), capped at
 * MAX_DEQUEUE_JOBS; undefined without the header, and then the answer is one job as Sourcegraph's.
 */
function maxJobsOf(c: Context): number | undefined {
  const header = c.req.header(MAX_JOBS_HEADER);
  if (header === undefined) return undefined;
  if (!/^[1-9][0-9]{0,5}$/.test(header)) throw new HttpError(400, `${MAX_JOBS_HEADER} must be a whole number from 1 to ${MAX_DEQUEUE_JOBS}`);
  return Math.min(Number(header), MAX_DEQUEUE_JOBS);
}
