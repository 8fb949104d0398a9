import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { JOB_STATES, QUEUE_NAMES, QueueNameSchema, TERMINAL_STATES, type JobState } from '@sandfleet/protocol';
import {
  addRepository,
  cancelJob,
  enqueueJob,
  getJob,
  getLogEntries,
  listExecutors,
  listJobs,
  listRepositories,
  queueCounts,
  readLogChunksSince,
  removeRepository,
} from '@sandfleet/db';
import type { AppDeps } from '../deps.js';
import { HttpError, jsonError } from '../http/errors.js';
import { JobSpecInput, toStoredSpec } from '../jobs/job-spec.js';
import { RepositoryInput, RepositorySourceError, resolveRepositorySource } from '../git/repositories.js';
import { adminAuth } from './admin-auth.js';
import { toExecutorView, toJobView } from './views.js';

const ListQuery = z
  .object({
    queue: QueueNameSchema.optional(),
    state: z.enum(JOB_STATES).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    before: z.coerce.number().int().positive().optional(),
  })
  .strict();

const JobIdParam = z.coerce.number().int().positive();

/** The JSON API for people and the CLI, behind an admin token. */
export function userApiRoutes(deps: AppDeps): Hono {
  const db = deps.database.db;
  const app = new Hono();
  app.onError((err, c) => {
    if (err instanceof HttpError) return jsonError(c, err.status, err.message);
    deps.log.error({ err, path: c.req.path }, 'user API handler failed');
    return jsonError(c, 500, 'internal error');
  });
  app.use('*', adminAuth(deps.database));

  app.post('/jobs', async (c) => {
    const input = parse(JobSpecInput, await readJson(c.req.raw));
    const job = await enqueueJob(db, { queue: input.queue, spec: toStoredSpec(input), priority: input.priority ?? 0 });
    return c.json({ ...toJobView(job), spec: job.spec }, 201);
  });

  app.get('/jobs', async (c) => {
    const q = parse(ListQuery, c.req.query());
    const rows = await listJobs(db, { queue: q.queue, state: q.state, limit: q.limit, beforeId: q.before });
    return c.json({ jobs: rows.map(toJobView) });
  });

  app.get('/jobs/:id', async (c) => {
    const id = parse(JobIdParam, c.req.param('id'));
    const job = await getJob(db, id);
    if (!job) throw new HttpError(404, `job ${id} not found`);
    return c.json({ ...toJobView(job), spec: job.spec, executionLogs: await getLogEntries(db, id) });
  });

  app.post('/jobs/:id/cancel', async (c) => {
    const id = parse(JobIdParam, c.req.param('id'));
    const state = await cancelJob(db, id);
    if (state === undefined) throw new HttpError(404, `job ${id} not found`);
    const job = await getJob(db, id);
    return c.json(toJobView(job!));
  });

  app.get('/jobs/:id/logs', async (c) => {
    const id = parse(JobIdParam, c.req.param('id'));
    if (!(await getJob(db, id))) throw new HttpError(404, `job ${id} not found`);
    const resumeFrom = Number(c.req.header('Last-Event-ID') ?? 0) || 0;
    return streamSSE(c, (stream) => followLogs(deps, id, resumeFrom, stream, c.req.raw.signal));
  });

  app.get('/executors', async (c) => {
    const rows = await listExecutors(db);
    return c.json({ executors: rows.map((r) => toExecutorView(r, deps.config.executorActiveMs)) });
  });

  app.get('/queues', async (c) => {
    const counts = await queueCounts(db);
    const queues = QUEUE_NAMES.map((name) => ({ name, counts: Object.fromEntries(JOB_STATES.map((s) => [s, counts[name]?.[s] ?? 0])) }));
    return c.json({ queues });
  });

  app.get('/repositories', async (c) => c.json({ repositories: await listRepositories(db) }));

  app.post('/repositories', async (c) => {
    const input = parse(RepositoryInput, await readJson(c.req.raw));
    let source: string;
    try {
      source = await resolveRepositorySource(input, deps.config.dataDir);
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

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new HttpError(400, result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
  }
  return result.data;
}

type SSE = Parameters<Parameters<typeof streamSSE>[1]>[0];

/**
 * Streams a job's log as Server-Sent Events: `entry` when a step starts or changes (exit code,
 * duration), `output` for each appended chunk, `state` on state changes, and `end` once the job is
 * final and everything was sent. Event ids are the log cursor, so Last-Event-ID resumes.
 */
async function followLogs(deps: AppDeps, jobId: number, resumeFrom: number, stream: SSE, signal: AbortSignal) {
  const db = deps.database.db;
  let cursor = resumeFrom;
  let lastState: JobState | undefined;
  while (!signal.aborted && !stream.aborted) {
    // Read the state first: a job seen final here has no output written after the read below.
    const job = await getJob(db, jobId);
    if (!job) break;
    const batch = await readLogChunksSince(db, jobId, cursor);
    for (const e of orderLogEvents(batch)) await stream.writeSSE({ event: e.event, id: String(e.id), data: JSON.stringify(e.data) });
    const moved = batch.cursor !== cursor;
    cursor = batch.cursor;
    if (job.state !== lastState) {
      lastState = job.state;
      await stream.writeSSE({ event: 'state', data: JSON.stringify({ state: job.state, failureMessage: job.failureMessage }) });
    }
    if (TERMINAL_STATES.includes(job.state) && !moved) {
      await stream.writeSSE({ event: 'end', data: JSON.stringify({ state: job.state }) });
      break;
    }
    if (!moved) await stream.sleep(300);
  }
}

/**
 * Entry changes and chunks share one cursor sequence. An entry is reported with its latest metadata,
 * so its change may come after its own output; it is moved before the entry's first chunk of the
 * batch, so a follower always learns which step it is reading before the output. Ids stay the
 * cursor (the largest id sent is where to resume).
 */
function orderLogEvents(batch: Awaited<ReturnType<typeof readLogChunksSince>>) {
  const firstChunk = new Map<string, number>();
  for (const chunk of batch.chunks) {
    const key = `${chunk.attempt}:${chunk.entryIdx}`;
    if (!firstChunk.has(key)) firstChunk.set(key, chunk.id);
  }
  return [
    ...batch.entries.map((change) => ({
      order: Math.min(change.changeId, (firstChunk.get(`${change.attempt}:${change.idx}`) ?? Infinity) - 0.5),
      id: change.changeId,
      event: 'entry',
      data: { attempt: change.attempt, idx: change.idx, ...change.entry },
    })),
    ...batch.chunks.map((chunk) => ({ order: chunk.id, id: chunk.id, event: 'output', data: chunk })),
  ].sort((a, b) => a.order - b.order);
}
