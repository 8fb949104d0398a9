import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { JOB_STATES } from '@sandfleet/protocol';
import { addRepository, cancelJob, getJob, getLogPreview, listExecutors, listJobAttempts, listJobs, listRepositories, queueCounts, removeRepository, retryJob } from '@sandfleet/db';
import type { AppDeps } from '../deps.js';
import type { QueueCatalog } from '../queue-catalog.js';
import { parseInput, readJsonBody, USER_API_BODY } from '../http/body.js';
import { HttpError, jsonError } from '../http/errors.js';
import { JobSpecInput } from '../jobs/job-spec.js';
import { followLogEvents } from '../jobs/log-events.js';
import { LOG_PREVIEW_BYTES, logTextStream } from '../jobs/log-text.js';
import { JobSubmitError, submitJob, submitJobs } from '../jobs/submit.js';
import { RepositoryInput, RepositorySourceError, resolveRepositorySource } from '../git/repositories.js';
import { adminAuth } from './admin-auth.js';
import { BatchItemError, readJobBatch } from './job-batch.js';
import { parseCursor, RowIdText } from '../http/ids.js';
import { registerAdminTokenRoutes } from './admin-token-routes.js';
import { registerExecutorSecretRoutes } from './executor-secret-routes.js';
import { toAttemptView, toExecutorView, toJobView } from './views.js';

function listQuery(queues: QueueCatalog) {
  return z
    .object({
      queue: queues.nameSchema().optional(),
      state: z.enum(JOB_STATES).optional(),
      repository: z.string().min(1).max(1000).optional(),
      limit: z.string().regex(/^[1-9][0-9]{0,2}$/, 'must be a decimal number from 1 to 500').transform(Number).pipe(z.number().max(500)).default(50),
      before: RowIdText.optional(),
    })
    .strict();
}

const JobIdParam = RowIdText;

/** The JSON API for people and the CLI, behind an admin token. */
export function userApiRoutes(deps: AppDeps): Hono {
  const db = deps.database.db;
  const app = new Hono();
  const ListQuery = listQuery(deps.config.queues);
  app.onError((err, c) => {
    if (err instanceof BatchItemError) return c.json({ error: err.message, index: err.index, ...(err.line !== undefined ? { line: err.line } : {}) }, err.status);
    if (err instanceof HttpError) return jsonError(c, err.status, err.message);
    deps.log.error({ err, path: c.req.path }, 'user API handler failed');
    return jsonError(c, 500, 'internal error');
  });
  app.use('*', adminAuth(deps.adminTokens));
  registerAdminTokenRoutes(app, deps);
  registerExecutorSecretRoutes(app, deps);

  app.post('/jobs', async (c) => {
    const input = await readJsonBody(c, JobSpecInput, USER_API_BODY);
    const job = await submitJob(deps.database, deps.config.queues, input).catch((err: unknown) => {
      throw err instanceof JobSubmitError ? new HttpError(400, err.message) : err;
    });
    return c.json({ ...toJobView(job), spec: job.spec }, 201);
  });

  // Before /jobs/:id, which would take "batch" for an id.
  app.get('/jobs/batch', (c) => c.json({ maxJobs: deps.config.maxBatchJobs, maxBodyBytes: deps.config.maxBodyBytes }));

  app.post('/jobs/batch', async (c) => {
    const batch = await readJobBatch(c, deps.config.maxBatchJobs);
    const ids = await submitJobs(deps.database, deps.config.queues, batch.jobs).catch((err: unknown) => {
      if (err instanceof JobSubmitError && err.index !== undefined) throw new BatchItemError(err.index, batch.lineOf(err.index), err.message);
      throw err;
    });
    return c.json({ ids }, 201);
  });

  app.get('/jobs', async (c) => {
    const q = parseInput(ListQuery, c.req.query());
    const rows = await listJobs(db, { queue: q.queue, state: q.state, repositoryName: q.repository, limit: q.limit, beforeId: q.before });
    return c.json({ jobs: rows.map(toJobView) });
  });

  app.get('/jobs/:id', async (c) => {
    const id = parseInput(JobIdParam, c.req.param('id'));
    const job = await getJob(db, id);
    if (!job) throw new HttpError(404, `job ${id} not found`);
    const executionLogs = await getLogPreview(db, id, LOG_PREVIEW_BYTES);
    const attempts = (await listJobAttempts(db, id)).map(toAttemptView);
    return c.json({ ...toJobView(job), spec: job.spec, attempts, executionLogs, logText: `/api/jobs/${id}/log.txt` });
  });

  app.get('/jobs/:id/log.txt', async (c) => {
    const id = parseInput(JobIdParam, c.req.param('id'));
    if (!(await getJob(db, id))) throw new HttpError(404, `job ${id} not found`);
    return c.body(logTextStream(deps.database, id), 200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache' });
  });

  app.post('/jobs/:id/cancel', async (c) => {
    const id = parseInput(JobIdParam, c.req.param('id'));
    const state = await cancelJob(db, id);
    if (state === undefined) throw new HttpError(404, `job ${id} not found`);
    const job = await getJob(db, id);
    return c.json(toJobView(job!));
  });

  app.post('/jobs/:id/retry', async (c) => {
    const id = parseInput(JobIdParam, c.req.param('id'));
    const retry = await retryJob(db, id);
    if (retry) return c.json(toJobView(retry), 201);
    const job = await getJob(db, id);
    if (!job) throw new HttpError(404, `job ${id} not found`);
    throw new HttpError(409, `job ${id} is ${job.state}: only a completed, errored, failed or canceled job can be retried`);
  });

  app.get('/jobs/:id/logs', async (c) => {
    const id = parseInput(JobIdParam, c.req.param('id'));
    if (!(await getJob(db, id))) throw new HttpError(404, `job ${id} not found`);
    const lastEventId = c.req.header('Last-Event-ID');
    const resumeFrom = lastEventId === undefined || lastEventId === '' ? 0 : parseCursor(lastEventId);
    if (resumeFrom === undefined) throw new HttpError(400, `Last-Event-ID must be an event id this stream sent, not ${JSON.stringify(lastEventId)}`);
    return streamSSE(c, (stream) => followLogStream(deps, id, resumeFrom, stream, c.req.raw.signal));
  });

  app.get('/executors', async (c) => {
    const rows = await listExecutors(db);
    return c.json({ executors: rows.map((r) => toExecutorView(r, deps.config.executorActiveMs)) });
  });

  app.get('/queues', async (c) => {
    const counts = await queueCounts(db);
    const queues = deps.config.queues.names.map((name) => ({ name, counts: Object.fromEntries(JOB_STATES.map((s) => [s, counts[name]?.[s] ?? 0])) }));
    return c.json({ queues });
  });

  app.get('/repositories', async (c) => c.json({ repositories: await listRepositories(db) }));

  app.post('/repositories', async (c) => {
    const input = await readJsonBody(c, RepositoryInput, USER_API_BODY);
    let source: string;
    try {
      source = await resolveRepositorySource(input, deps.config);
    } catch (err) {
      if (err instanceof RepositorySourceError) throw new HttpError(400, err.message);
      throw err;
    }
    await addRepository(db, { name: input.name, source });
    return c.json({ name: input.name, source }, 201);
  });

  app.delete('/repositories/:name{.+}', async (c) => {
    const removed = await removeRepository(db, c.req.param('name'));
    if (!removed) throw new HttpError(404, `repository ${c.req.param('name')} not found`);
    return c.body(null, 204);
  });

  return app;
}

type SSE = Parameters<Parameters<typeof streamSSE>[1]>[0];

/** Streams a job's log events as Server-Sent Events; event ids are the log cursor, so Last-Event-ID resumes. */
async function followLogStream(deps: AppDeps, jobId: number, resumeFrom: number, stream: SSE, request: AbortSignal) {
  const stop = new AbortController();
  stream.onAbort(() => stop.abort());
  await followLogEvents(
    deps.database,
    jobId,
    resumeFrom,
    (e) => stream.writeSSE({ event: e.event, ...('id' in e && e.id !== undefined ? { id: String(e.id) } : {}), data: JSON.stringify(e.data) }),
    { signal: AbortSignal.any([stop.signal, request]), recheckMs: deps.config.logFollowRecheckMs },
  );
}
