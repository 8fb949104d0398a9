/** @jsxImportSource hono/jsx */
import { TERMINAL_STATES } from '@sandfleet/protocol';
import type { Job, JobAttempt, LogChunk, LogEntryPage, UiSession } from '@sandfleet/db';
import type { LogEntryEventData } from '../jobs/log-events.js';
import { ansiToJsx } from './ansi.js';
import { Ago } from './layout.js';
import { CancelButton, RetryButton, StateBadge } from './jobs.js';

/** How much of each entry's output the job page shows before "show more", and how much each click adds. */
export const PAGE_LOG_BYTES = 64 * 1024;
export const MORE_LOG_BYTES = 256 * 1024;

/** A log entry as the page shows it: its latest metadata and the start of its output. */
export interface RenderedEntry {
  entry: LogEntryEventData;
  /** The output shown (its first `shownBytes` bytes). */
  out: string;
  shownBytes: number;
  /** The entry's whole output size; more than shownBytes means "show more". */
  totalBytes: number;
}

export const entryId = (attempt: number, idx: number) => `${attempt}-${idx}`;

export function toRenderedEntry(page: LogEntryPage): RenderedEntry {
  return { entry: { attempt: page.attempt, idx: page.idx, ...page.entry }, out: page.out, shownBytes: page.nextOffset, totalBytes: page.totalBytes };
}

export function JobStateView(props: { job: Pick<Job, 'state' | 'failureMessage'> }) {
  return (
    <span id="job-state">
      <StateBadge state={props.job.state} />
      {props.job.failureMessage ? <span class="error"> {props.job.failureMessage}</span> : null}
    </span>
  );
}

function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function EntryHead(props: { entry: LogEntryEventData }) {
  const { entry } = props;
  const done = entry.exitCode !== null && entry.exitCode !== undefined;
  return (
    <header class="entry-head">
      <strong>{entry.key}</strong>
      {entry.attempt > 1 ? <span class="muted">attempt {entry.attempt}</span> : null}
      <span class={done && entry.exitCode !== 0 ? 'error' : 'muted'} data-exit-code={done ? String(entry.exitCode) : ''}>
        {done ? `exit code ${entry.exitCode}` : 'running…'}
      </span>
      <span class="muted">{formatDuration(entry.durationMs)}</span>
      {entry.command && entry.command.length > 0 ? <pre class="cmd">$ {entry.command.join(' ')}</pre> : null}
    </header>
  );
}

export function OutputChunk(props: { chunk: LogChunk }) {
  return <span class="chunk" data-id={String(props.chunk.id)}>{ansiToJsx(props.chunk.out)}</span>;
}

/**
 * One log entry. `data-shown-bytes` / `data-limit` let log-stream.js keep appending live output
 * only up to the limit; past it (or when the page was rendered cut) the entry shows "show more",
 * which reads the next bytes from the entry's output route.
 */
export function EntryBlock(props: { jobId: number; rendered: RenderedEntry }) {
  const { entry, out, shownBytes, totalBytes } = props.rendered;
  const id = entryId(entry.attempt, entry.idx);
  const cut = totalBytes > shownBytes;
  return (
    <article class="entry" id={`entry-${id}`} aria-label={`Log entry ${entry.key}`}>
      <EntryHead entry={entry} />
      <pre class="out" id={`out-${id}`} tabindex={0} data-shown-bytes={String(shownBytes)} data-limit={String(PAGE_LOG_BYTES)} data-truncated={String(cut)}>
        {out ? <span class="chunk">{ansiToJsx(out)}</span> : null}
      </pre>
      <p class="more" hidden={!cut}>
        <button type="button" class="show-more" data-href={`/jobs/${props.jobId}/entries/${entry.attempt}/${entry.idx}`} data-offset={String(shownBytes)}>
          Show more
        </button>{' '}
        <span class="muted more-size">{cut ? `${formatBytes(shownBytes)} of ${formatBytes(totalBytes)} shown` : ''}</span>{' '}
        <a href={`/jobs/${props.jobId}/log.txt`} download>
          Download the full log
        </a>
      </p>
    </article>
  );
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function AttemptHistory(props: { attempts: JobAttempt[] }) {
  if (props.attempts.length === 0) return null;
  return (
    <section class="card" aria-label="Attempts">
      <h2>Attempts</h2>
      <table>
        <thead>
          <tr>
            <th scope="col" class="num">Attempt</th>
            <th scope="col">Executor</th>
            <th scope="col">Started</th>
            <th scope="col">Ended</th>
            <th scope="col">Outcome</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
          {props.attempts.map((a) => (
            <tr class="attempt" data-attempt={String(a.attempt)} data-outcome={a.outcome ?? 'running'}>
              <td class="num">{a.attempt}</td>
              <td>{a.executorHostname}</td>
              <td>
                <Ago at={a.startedAt} />
              </td>
              <td>
                <Ago at={a.finishedAt} />
              </td>
              <td>{a.outcome ? <span class={`state state-${a.outcome === 'reset' ? 'queued' : a.outcome}`}>{a.outcome}</span> : <span class="muted">running</span>}</td>
              <td>{a.resetReason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Steps(props: { job: Job }) {
  const steps = [
    ...(props.job.spec.dockerSteps ?? []).map((s, i) => ({ key: s.key || `step ${i}`, image: s.image, commands: s.commands })),
    ...(props.job.spec.cliSteps ?? []).map((s, i) => ({ key: s.key || `src step ${i}`, image: 'src-cli', commands: [s.command.join(' ')] })),
  ];
  if (steps.length === 0) return <span class="muted">none</span>;
  return (
    <ol>
      {steps.map((s) => (
        <li>
          <strong>{s.key}</strong> <span class="muted">{s.image}</span> <code>{s.commands.join(' && ')}</code>
        </li>
      ))}
    </ol>
  );
}

export interface JobPageProps {
  job: Job;
  attempts: JobAttempt[];
  retries: Job[];
  entries: RenderedEntry[];
  cursor: number;
  session: UiSession;
}

export function JobPage(props: JobPageProps) {
  const { job } = props;
  const live = !TERMINAL_STATES.includes(job.state);
  return (
    <>
      <h1>
        Job #{job.id} <CancelButton job={job} session={props.session} /> <RetryButton job={job} session={props.session} />
      </h1>
      <section class="card" aria-label="Summary">
        <dl class="summary">
          <dt>State</dt>
          <dd>
            <JobStateView job={job} />
          </dd>
          {job.retryOf !== null ? (
            <>
              <dt>Retry of</dt>
              <dd>
                <a href={`/jobs/${job.retryOf}`} id="retry-of">
                  #{job.retryOf}
                </a>
              </dd>
            </>
          ) : null}
          {props.retries.length > 0 ? (
            <>
              <dt>Retried as</dt>
              <dd id="retried-as">
                {props.retries.map((r, i) => (
                  <>
                    {i > 0 ? ', ' : ''}
                    <a href={`/jobs/${r.id}`}>#{r.id}</a> <StateBadge state={r.state} />
                  </>
                ))}
              </dd>
            </>
          ) : null}
          <dt>Queue</dt>
          <dd>{job.queue}</dd>
          <dt>Repository</dt>
          <dd>{job.repositoryName || <span class="muted">none</span>}</dd>
          <dt>Commit</dt>
          <dd>
            <code>{job.spec.commit || ''}</code>
          </dd>
          <dt>Steps</dt>
          <dd>
            <Steps job={job} />
          </dd>
          <dt>Executor</dt>
          <dd>{job.workerHostname ?? <span class="muted">not picked up yet</span>}</dd>
          <dt>Attempt</dt>
          <dd>
            {job.attempt} <span class="muted">({job.numResets} reset(s), {job.numFailures} failure(s))</span>
          </dd>
          <dt>Queued</dt>
          <dd>
            <Ago at={job.queuedAt} />
          </dd>
          <dt>Started</dt>
          <dd>
            <Ago at={job.startedAt} />
          </dd>
          <dt>Finished</dt>
          <dd>
            <Ago at={job.finishedAt} />
          </dd>
        </dl>
      </section>
      <AttemptHistory attempts={props.attempts} />
      <section id="log" aria-label="Log" data-cursor={String(props.cursor)} data-events={live ? `/jobs/${job.id}/events` : undefined} data-live={live ? 'connecting' : 'ended'}>
        <h2>
          Log{' '}
          <a class="button" href={`/jobs/${job.id}/log.txt`} download>
            Download
          </a>
        </h2>
        <div id="log-entries">
          {props.entries.map((rendered) => (
            <EntryBlock jobId={job.id} rendered={rendered} />
          ))}
        </div>
        {props.entries.length === 0 && !live ? <p class="muted">This job wrote no log.</p> : null}
      </section>
    </>
  );
}
