/** @jsxImportSource hono/jsx */
import { JOB_STATES, TERMINAL_STATES, type JobState } from '@sandfleet/protocol';
import { RETRYABLE_STATES, type Job, type UiSession } from '@sandfleet/db';
import { Ago, CsrfField } from './layout.js';

export interface JobFilter {
  queue?: string | undefined;
  state?: JobState | undefined;
  repository?: string | undefined;
  before?: number | undefined;
}

export function filterQuery(filter: JobFilter): string {
  const params = new URLSearchParams();
  if (filter.queue) params.set('queue', filter.queue);
  if (filter.state) params.set('state', filter.state);
  if (filter.repository) params.set('repository', filter.repository);
  if (filter.before) params.set('before', String(filter.before));
  const query = params.toString();
  return query ? `?${query}` : '';
}

export function StateBadge(props: { state: JobState }) {
  return <span class={`state state-${props.state}`}>{props.state}</span>;
}

export function CancelButton(props: { job: Job; session: UiSession }) {
  if (TERMINAL_STATES.includes(props.job.state)) return null;
  return (
    <form class="inline cancel-form" method="post" action={`/jobs/${props.job.id}/cancel`}>
      <CsrfField session={props.session} />
      <button type="submit" class="danger" aria-label={`Cancel job ${props.job.id}`}>
        Cancel
      </button>
    </form>
  );
}

/** Re-enqueues a finished job as a new one (POST /jobs/{id}/retry, which redirects to it). */
export function RetryButton(props: { job: Job; session: UiSession }) {
  if (!RETRYABLE_STATES.includes(props.job.state)) return null;
  return (
    <form class="inline retry-form" method="post" action={`/jobs/${props.job.id}/retry`}>
      <CsrfField session={props.session} />
      <button type="submit" aria-label={`Retry job ${props.job.id}`}>
        Retry
      </button>
    </form>
  );
}

export function JobsPage(props: { jobs: Job[]; hasOlder: boolean; filter: JobFilter; queues: string[]; counts: Record<JobState, number>; session: UiSession }) {
  const { filter } = props;
  const last = props.jobs.at(-1);
  return (
    <>
      <h1>Jobs</h1>
      <form class="filters" method="get" action="/jobs">
        <label>
          Queue
          <select name="queue">
            <option value="">all</option>
            {props.queues.map((q) => (
              <option value={q} selected={filter.queue === q}>
                {q}
              </option>
            ))}
          </select>
        </label>
        <label>
          State
          <select name="state">
            <option value="">all</option>
            {JOB_STATES.map((s) => (
              <option value={s} selected={filter.state === s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Repository
          <input type="search" name="repository" value={filter.repository ?? ''} placeholder="exact name" maxlength={500} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ul class="counts" aria-label="Jobs per state">
        {JOB_STATES.map((s) => (
          <li>
            <a href={`/jobs${filterQuery({ queue: filter.queue, repository: filter.repository, state: s })}`} data-state={s}>
              <StateBadge state={s} /> {props.counts[s]}
            </a>
          </li>
        ))}
      </ul>
      {props.jobs.length === 0 ? (
        <p class="muted">No jobs match.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col" class="num">Job</th>
              <th scope="col">Queue</th>
              <th scope="col">State</th>
              <th scope="col">Repository</th>
              <th scope="col">Commit</th>
              <th scope="col">Queued</th>
              <th scope="col">Executor</th>
              <th scope="col"><span class="muted">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {props.jobs.map((job) => (
              <tr class="job" data-id={String(job.id)}>
                <td class="num">
                  <a href={`/jobs/${job.id}`}>#{job.id}</a>
                </td>
                <td>{job.queue}</td>
                <td>
                  <StateBadge state={job.state} />
                </td>
                <td>
                  {job.repositoryName ? <a href={`/jobs${filterQuery({ ...filter, before: undefined, repository: job.repositoryName })}`}>{job.repositoryName}</a> : <span class="muted">—</span>}
                </td>
                <td>
                  <code>{job.spec.commit ? job.spec.commit.slice(0, 10) : ''}</code>
                </td>
                <td>
                  <Ago at={job.queuedAt} />
                </td>
                <td>{job.workerHostname ?? ''}</td>
                <td>
                  <CancelButton job={job} session={props.session} />
                  <RetryButton job={job} session={props.session} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        {filter.before ? <a href={`/jobs${filterQuery({ ...filter, before: undefined })}`}>Newest</a> : null}
        {props.hasOlder && last ? <a href={`/jobs${filterQuery({ ...filter, before: last.id })}`} rel="next">Older jobs →</a> : null}
      </nav>
    </>
  );
}
