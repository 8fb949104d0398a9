/** @jsxImportSource hono/jsx */
import { Hono, type Context } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { JOB_STATES, TERMINAL_STATES } from '@sandfleet/protocol';
import {
  cancelJob,
  createUiSession,
  deleteUiSession,
  getJob,
  jobStateCounts,
  listExecutors,
  listJobAttempts,
  listJobs,
  listRetriesOf,
  processingJobsByExecutor,
  readLogEntryPage,
  readLogPageStart,
  retryJob,
  verifyAdminToken,
  configSecretExpiry,
} from '@sandfleet/db';
import type { AppDeps } from '../deps.js';
import type { QueueCatalog } from '../queue-catalog.js';
import { followLogEvents, type LogEvent } from '../jobs/log-events.js';
import { logTextStream } from '../jobs/log-text.js';
import { assetUrl, serveAssets } from './assets.js';
import { ExecutorList, ExecutorSetup, visibleExecutors } from './executors.js';
import { pageSecurityHeaders } from './headers.js';
import { EntryBlock, entryId, JobPage, JobStateView, MORE_LOG_BYTES, OutputChunk, PAGE_LOG_BYTES, toRenderedEntry } from './job.js';
import { ansiToJsx } from './ansi.js';
import { JobsPage } from './jobs.js';
import { Layout, SignInPage, type Section } from './layout.js';
import { registerQueuesPage } from './queues.js';
import { registerConfigurationPages } from './configuration-routes.js';
import { signInRateLimit } from './sign-in-limit.js';
import {
  assertSameOrigin,
  clearSessionCookie,
  CrossSiteRequestError,
  readForm,
  readProtectedForm,
  requireSession,
  safeNextPath,
  SESSION_TTL_MS,
  setSessionCookie,
  type UiEnv,
} from './session.js';

const PAGE_SIZE = 50;
const emptyToUndefined = (v: unknown) => (v === '' ? undefined : v);
/** The jobs filter: a value that is not one of the choices is ignored rather than refused. */
function jobsQuery(queues: QueueCatalog) {
  return z.object({
    queue: z.preprocess(emptyToUndefined, queues.nameSchema().optional()).catch(undefined),
    state: z.preprocess(emptyToUndefined, z.enum(JOB_STATES).optional()).catch(undefined),
    repository: z.preprocess(emptyToUndefined, z.string().max(500).optional()).catch(undefined),
    before: z.coerce.number().int().positive().optional().catch(undefined),
  });
}
const JobIdParam = z.coerce.number().int().positive();
const EntryParams = z.object({ id: JobIdParam, attempt: z.coerce.number().int().positive().max(2 ** 31 - 1), idx: z.coerce.number().int().positive().max(2 ** 31 - 1) });
const OffsetQuery = z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).catch(0);

async function render(c: Context, element: JSX.Element, status: 200 | 401 | 403 | 404 | 429 = 200): Promise<Response> {
  return c.html('<!doctype html>' + (await element.toString()), status);
}

/** The admin web UI: server-rendered pages behind a session cookie (the JSON API keeps bearer tokens). */
export function uiRoutes(deps: AppDeps): Hono<UiEnv> {
  const db = deps.database.db;
  const JobsQuery = jobsQuery(deps.config.queues);
  const app = new Hono<UiEnv>();
  const signedIn = requireSession(deps.database);
  const page = (c: Context<UiEnv>, section: Section, title: string, body: JSX.Element, scripts?: string[]) =>
    render(c, <Layout title={title} section={section} session={c.get('session')} children={body} scripts={scripts} />);

  app.onError((err, c) => {
    if (err instanceof CrossSiteRequestError) return c.text(err.message, 403);
    deps.log.error({ err, path: c.req.path }, 'web UI handler failed');
    return c.text('internal error', 500);
  });
  serveAssets(app);
  for (const path of ['/', '/sign-in', '/sign-out', '/executors', '/executors/*', '/jobs', '/jobs/*', '/queues']) app.use(path, pageSecurityHeaders);

  app.get('/sign-in', (c) => render(c, <SignInPage next={safeNextPath(c.req.query('next'))} />));
  const tooManyFailures = (c: Context, seconds: number) => render(c, <SignInPage next="/" error={`Too many wrong admin tokens from this address: try again in ${seconds} s.`} />, 429);
  app.post('/sign-in', signInRateLimit(deps, tooManyFailures), async (c) => {
    assertSameOrigin(c, deps.config);
    const form = await readForm(c);
    const next = safeNextPath(form.next);
    const token = form.token ? await verifyAdminToken(db, form.token) : undefined;
    if (!token) return render(c, <SignInPage next={next} error="That is not a valid admin token." />, 401);
    const { cookieValue } = await createUiSession(db, SESSION_TTL_MS, token.id);
    setSessionCookie(c, deps.config, cookieValue);
    return c.redirect(next, 303);
  });
  app.post('/sign-out', signedIn, async (c) => {
    await readProtectedForm(c, deps.config);
    await deleteUiSession(db, c.get('cookieValue'));
    clearSessionCookie(c, deps.config);
    return c.redirect('/sign-in', 303);
  });

  app.get('/', signedIn, (c) => c.redirect('/executors', 303));

  const executorList = async (showAll: boolean) => {
    const all = await listExecutors(db);
    const shown = visibleExecutors(all, showAll);
    const running = await processingJobsByExecutor(db, shown.map((e) => e.hostname));
    return { all, list: <ExecutorList executors={shown} running={running} hidden={all.length - shown.length} showAll={showAll} activeMs={deps.config.executorActiveMs} /> };
  };
  app.get('/executors', signedIn, async (c) => {
    const { all, list } = await executorList(c.req.query('all') === '1');
    const token = deps.config.executorAccessToken;
    const configSecretRetiresAt = all.length === 0 && token ? await configSecretExpiry(db, token) : undefined;
    return page(
      c,
      'executors',
      'Executors',
      <>
        <h1>Executors</h1>
        {list}
        {all.length === 0 ? <ExecutorSetup config={deps.config} url={coordinatorUrl(c, deps)} configSecretRetiresAt={configSecretRetiresAt} /> : null}
      </>,
    );
  });
  app.get('/executors/list', signedIn, async (c) => c.html(await (await executorList(c.req.query('all') === '1')).list.toString()));

  app.get('/jobs', signedIn, async (c) => {
    const filter = JobsQuery.parse(c.req.query());
    const rows = await listJobs(db, { queue: filter.queue, state: filter.state, repositoryName: filter.repository, beforeId: filter.before, limit: PAGE_SIZE + 1 });
    const perState = await jobStateCounts(db, { queue: filter.queue, repositoryName: filter.repository });
    return page(
      c,
      'jobs',
      'Jobs',
      <JobsPage jobs={rows.slice(0, PAGE_SIZE)} hasOlder={rows.length > PAGE_SIZE} filter={filter} queues={[...deps.config.queues.names]} counts={perState} session={c.get('session')} />,
    );
  });

  app.get('/jobs/:id', signedIn, async (c) => {
    const id = JobIdParam.safeParse(c.req.param('id'));
    const job = id.success ? await getJob(db, id.data) : undefined;
    if (!job) return c.text('job not found', 404);
    // The start of each entry and the cursor come from one snapshot: the live follow resumes exactly after it.
    const log = await readLogPageStart(db, job.id, PAGE_LOG_BYTES);
    const [attempts, retries] = await Promise.all([listJobAttempts(db, job.id), listRetriesOf(db, job.id)]);
    return page(
      c,
      'jobs',
      `Job #${job.id}`,
      <JobPage job={job} attempts={attempts} retries={retries} entries={log.entries.map(toRenderedEntry)} cursor={log.cursor} session={c.get('session')} />,
      [assetUrl('log-stream.js')],
    );
  });

  app.post('/jobs/:id/retry', signedIn, async (c) => {
    await readProtectedForm(c, deps.config);
    const id = JobIdParam.safeParse(c.req.param('id'));
    if (!id.success) return c.text('job not found', 404);
    const retry = await retryJob(db, id.data);
    if (retry) return c.redirect(`/jobs/${retry.id}`, 303);
    const job = await getJob(db, id.data);
    return job ? c.text(`job ${job.id} is ${job.state}: only a finished job can be retried`, 409) : c.text('job not found', 404);
  });

  // The next bytes of one entry's output, as rendered HTML (the "show more" button).
  app.get('/jobs/:id/entries/:attempt/:idx', signedIn, async (c) => {
    const params = EntryParams.safeParse(c.req.param());
    if (!params.success) return c.text('log entry not found', 404);
    const offset = OffsetQuery.parse(c.req.query('offset'));
    const entry = await readLogEntryPage(db, params.data.id, params.data, offset, MORE_LOG_BYTES);
    if (!entry) return c.text('log entry not found', 404);
    const html = entry.out ? await (<span class="chunk">{ansiToJsx(entry.out)}</span>).toString() : '';
    return c.json({ html, nextOffset: entry.nextOffset, totalBytes: entry.totalBytes });
  });

  app.get('/jobs/:id/log.txt', signedIn, async (c) => {
    const id = JobIdParam.safeParse(c.req.param('id'));
    if (!id.success || !(await getJob(db, id.data))) return c.text('job not found', 404);
    return c.body(logTextStream(deps.database, id.data), 200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Disposition': `attachment; filename="job-${id.data}.log"`,
      'Cache-Control': 'no-store',
    });
  });

  app.post('/jobs/:id/cancel', signedIn, async (c) => {
    await readProtectedForm(c, deps.config);
    const id = JobIdParam.safeParse(c.req.param('id'));
    if (!id.success || (await cancelJob(db, id.data)) === undefined) return c.text('job not found', 404);
    return c.redirect(`/jobs/${id.data}`, 303);
  });

  app.get('/jobs/:id/events', signedIn, async (c) => {
    const id = JobIdParam.safeParse(c.req.param('id'));
    if (!id.success || !(await getJob(db, id.data))) return c.text('job not found', 404);
    const after = Math.max(Number(c.req.header('Last-Event-ID')) || 0, Number(c.req.query('after')) || 0);
    return streamSSE(c, async (stream) => {
      const stop = new AbortController();
      stream.onAbort(() => stop.abort());
      await followLogEvents(deps.database, id.data, after, async (event) => stream.writeSSE(await toHtmlEvent(id.data, event)), {
        signal: AbortSignal.any([stop.signal, c.req.raw.signal]),
        recheckMs: deps.config.logFollowRecheckMs,
      });
    });
  });

  registerQueuesPage(app, deps, page, signedIn);
  registerConfigurationPages(app, deps, page, signedIn);

  return app;
}

/**
 * The URL executors should use: externalURL when the site sets it, else the address this page was
 * reached at (the configured one may name port 0 or a wildcard host).
 */
function coordinatorUrl(c: Context, deps: AppDeps): string {
  return deps.config.site.externalURL ? deps.config.externalUrl : new URL(c.req.url).origin;
}

/**
 * A log event as an SSE message whose data carries rendered (escaped) HTML for log-stream.js. The
 * cursor is also in the data: a browser gives an event without an `id:` field the last id it saw
 * (the spec's last-event-ID buffer), so log-stream.js cannot tell an id-less step announcement
 * from a repeat by `lastEventId`, and would drop it, and with it the step's output.
 */
export async function toHtmlEvent(jobId: number, event: LogEvent): Promise<{ event: string; id?: string; data: string }> {
  const id = 'id' in event && event.id !== undefined ? { id: String(event.id) } : {};
  const cursor = 'id' in event && event.id !== undefined ? { cursor: event.id } : {};
  switch (event.event) {
    case 'entry':
      return { event: 'entry', ...id, data: JSON.stringify({ ...cursor, html: await (<EntryBlock jobId={jobId} rendered={{ entry: event.data, out: '', shownBytes: 0, totalBytes: 0 }} />).toString() }) };
    case 'output':
      return {
        event: 'output',
        ...id,
        data: JSON.stringify({
          ...cursor,
          entry: entryId(event.data.attempt, event.data.entryIdx),
          replaces: event.data.replaces,
          bytes: Buffer.byteLength(event.data.out),
          html: await (<OutputChunk chunk={event.data} />).toString(),
        }),
      };
    case 'state':
      return { event: 'state', data: JSON.stringify({ final: TERMINAL_STATES.includes(event.data.state), html: await (<JobStateView job={event.data} />).toString() }) };
    case 'end':
      return { event: 'end', data: '{}' };
  }
}
