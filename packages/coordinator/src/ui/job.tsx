/** @jsxImportSource hono/jsx */
import { TERMINAL_STATES } from '@sandfleet/protocol';
import type { Job, LogChunk, UiSession } from '@sandfleet/db';
import type { LogEntryEventData, LogEvent } from '../jobs/log-events.js';
import { ansiToJsx } from './ansi.js';
import { Ago } from './layout.js';
import { CancelButton, StateBadge } from './jobs.js';

/** A log entry as the page shows it: its latest metadata and its output chunks in cursor order. */
export interface RenderedEntry {
  entry: LogEntryEventData;
  chunks: LogChunk[];
}

export const entryId = (attempt: number, idx: number) => `${attempt}-${idx}`;

/** Folds log events (from cursor 0) into entries, as the browser does with streamed ones. */
export function foldLogEvents(events: LogEvent[], into = new Map<string, RenderedEntry>()): Map<string, RenderedEntry> {
  for (const event of events) {
    if (event.event === 'entry') {
      const key = entryId(event.data.attempt, event.data.idx);
      const existing = into.get(key);
      if (existing) existing.entry = event.data;
      else into.set(key, { entry: event.data, chunks: [] });
    } else if (event.event === 'output') {
      const target = into.get(entryId(event.data.attempt, event.data.entryIdx));
      if (!target) continue;
      if (event.data.replaces) target.chunks = [];
      target.chunks.push(event.data);
    }
  }
  return into;
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

export function EntryBlock(props: { rendered: RenderedEntry }) {
  const { entry, chunks } = props.rendered;
  const id = entryId(entry.attempt, entry.idx);
  return (
    <article class="entry" id={`entry-${id}`} aria-label={`Log entry ${entry.key}`}>
      <EntryHead entry={entry} />
      <pre class="out" id={`out-${id}`} tabindex={0}>
        {chunks.map((chunk) => (
          <OutputChunk chunk={chunk} />
        ))}
      </pre>
    </article>
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

export function JobPage(props: { job: Job; entries: RenderedEntry[]; cursor: number; session: UiSession }) {
  const { job } = props;
  const live = !TERMINAL_STATES.includes(job.state);
  return (
    <>
      <h1>
        Job #{job.id} <CancelButton job={job} session={props.session} />
      </h1>
      <section class="card" aria-label="Summary">
        <dl class="summary">
          <dt>State</dt>
          <dd>
            <JobStateView job={job} />
          </dd>
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
      <section id="log" aria-label="Log" data-cursor={String(props.cursor)} data-events={live ? `/jobs/${job.id}/events` : undefined} data-live={live ? 'connecting' : 'ended'}>
        <h2>Log</h2>
        <div id="log-entries">
          {props.entries.map((rendered) => (
            <EntryBlock rendered={rendered} />
          ))}
        </div>
        {props.entries.length === 0 && !live ? <p class="muted">This job wrote no log.</p> : null}
      </section>
    </>
  );
}
