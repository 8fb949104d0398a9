/** @jsxImportSource hono/jsx */
import { Hono, type Context } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { JOB_STATES, QUEUE_NAMES, TERMINAL_STATES } from '@sandfleet/protocol';
import { cancelJob, createUiSession, deleteUiSession, getJob, listExecutors, listJobs, queueCounts, verifyAdminToken } from '@sandfleet/db';
import type { AppDeps } from '../deps.js';
import { followLogEvents, readLogEvents, type LogEvent } from '../jobs/log-events.js';
import { assetUrl, serveAssets } from './assets.js';
import { ExecutorList, ExecutorSetup, visibleExecutors } from './executors.js';
import { pageSecurityHeaders } from './headers.js';
import { EntryBlock, entryId, foldLogEvents, JobPage, JobStateView, OutputChunk } from './job.js';
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
const JobsQuery = z.object({
  queue: z.preprocess(emptyToUndefined, z.enum(QUEUE_NAMES).optional()).catch(undefined),
  state: z.preprocess(emptyToUndefined, z.enum(JOB_STATES).optional()).catch(undefined),
  before: z.coerce.number().int().positive().optional().catch(undefined),
});
const JobIdParam = z.coerce.number().int().positive();

async function render(c: Context, element: JSX.Element, status: 200 | 401 | 403 | 404 | 429 = 200): Promise<Response> {
  return c.html('<!doctype html>' + (await element.toString()), status);
}

/** The admin web UI: server-rendered pages behind a session cookie (the JSON API keeps bearer tokens). */
export function uiRoutes(deps: AppDeps): Hono<UiEnv> {
  const db = deps.database.db;
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
    return { all, list: <ExecutorList executors={shown} hidden={all.length - shown.length} showAll={showAll} activeMs={deps.config.executorActiveMs} /> };
  };
  app.get('/executors', signedIn, async (c) => {
    const { all, list } = await executorList(c.req.query('all') === '1');
    return page(
      c,
      'executors',
      'Executors',
      <>
        <h1>Executors</h1>
        {list}
        {all.length === 0 ? <ExecutorSetup config={deps.config} url={coordinatorUrl(c, deps)} /> : null}
      </>,
    );
  });
  app.get('/executors/list', signedIn, async (c) => c.html(await (await executorList(c.req.query('all') === '1')).list.toString()));

  app.get('/jobs', signedIn, async (c) => {
    const filter = JobsQuery.parse(c.req.query());
    const rows = await listJobs(db, { queue: filter.queue, state: filter.state, beforeId: filter.before, limit: PAGE_SIZE + 1 });
    const counts = await queueCounts(db);
    const perState = Object.fromEntries(
      JOB_STATES.map((s) => [s, Object.entries(counts).reduce((sum, [queue, n]) => sum + (filter.queue && filter.queue !== queue ? 0 : n[s]), 0)]),
    ) as Record<(typeof JOB_STATES)[number], number>;
    return page(
      c,
      'jobs',
      'Jobs',
      <JobsPage jobs={rows.slice(0, PAGE_SIZE)} hasOlder={rows.length > PAGE_SIZE} filter={filter} queues={[...QUEUE_NAMES]} counts={perState} session={c.get('session')} />,
    );
  });

  app.get('/jobs/:id', signedIn, async (c) => {
    const id = JobIdParam.safeParse(c.req.param('id'));
    const job = id.success ? await getJob(db, id.data) : undefined;
    if (!job) return c.text('job not found', 404);
    const { entries, cursor } = await readWholeLog(deps, job.id);
    return page(c, 'jobs', `Job #${job.id}`, <JobPage job={job} entries={entries} cursor={cursor} session={c.get('session')} />, [assetUrl('log-stream.js')]);
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
      await followLogEvents(deps.database, id.data, after, async (event) => stream.writeSSE(await toHtmlEvent(event)), {
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

/** Reads the whole log once, in cursor order, for the first render. */
async function readWholeLog(deps: AppDeps, jobId: number) {
  const announced = new Set<string>();
  const entries = foldLogEvents([]);
  let cursor = 0;
  for (;;) {
    const page = await readLogEvents(deps.database, jobId, cursor, announced);
    foldLogEvents(page.events, entries);
    if (page.cursor === cursor || page.events.length === 0) break;
    cursor = page.cursor;
  }
  return { entries: [...entries.values()], cursor };
}

/** A log event as an SSE message whose data carries rendered (escaped) HTML for log-stream.js. */
async function toHtmlEvent(event: LogEvent): Promise<{ event: string; id?: string; data: string }> {
  const id = 'id' in event && event.id !== undefined ? { id: String(event.id) } : {};
  switch (event.event) {
    case 'entry':
      return { event: 'entry', ...id, data: JSON.stringify({ html: await (<EntryBlock rendered={{ entry: event.data, chunks: [] }} />).toString() }) };
    case 'output':
      return {
        event: 'output',
        ...id,
        data: JSON.stringify({ entry: entryId(event.data.attempt, event.data.entryIdx), replaces: event.data.replaces, html: await (<OutputChunk chunk={event.data} />).toString() }),
      };
    case 'state':
      return { event: 'state', data: JSON.stringify({ final: TERMINAL_STATES.includes(event.data.state), html: await (<JobStateView job={event.data} />).toString() }) };
    case 'end':
      return { event: 'end', data: '{}' };
  }
}
