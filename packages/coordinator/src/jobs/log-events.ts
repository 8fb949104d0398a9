import { TERMINAL_STATES, type ExecutionLogEntry, type JobState } from '@sandfleet/protocol';
import { getJob, readLogChunksSince, type Database, type LogChunk, type LogEntryChange, type LogFollowBatch } from '@sandfleet/db';

/**
 * A job's log as one ordered event sequence: the only place that decides in which order log rows
 * reach a reader. Events follow the database's cursor order (the order the rows were written, see
 * @sandfleet/db logs.ts), so a reader that resumes from the id of the last event it received misses
 * nothing and receives nothing twice.
 *
 * - `entry`: a step was created or changed (exit code, duration); `id` is its change id.
 * - `output`: a chunk of a step's output; `id` is the chunk id.
 * - `state`: the job's state changed (no id); `end`: the job is final and everything was sent.
 *
 * A step row holds only its latest metadata, so a step created before its first output but
 * changed after it (its exit) would be named only after that output. Such a step is announced
 * right before its first chunk with an id-less `entry` without exit code or duration: the reader
 * learns which step it reads, and its position (the last id) does not move past rows not yet sent.
 */
export type LogEvent =
  | { event: 'entry'; id?: number; data: LogEntryEventData }
  | { event: 'output'; id: number; data: LogChunk }
  | { event: 'state'; data: { state: JobState; failureMessage: string | null } }
  | { event: 'end'; data: { state: JobState } };

export type LogEntryEventData = { attempt: number; idx: number } & ExecutionLogEntry;

/** How often a follower re-reads without a notification: notifications are best effort. */
export const LOG_FOLLOW_RECHECK_MS = 5_000;

export interface LogEventPage {
  events: LogEvent[];
  /** Where the next read starts: the largest id among `events`, or the given cursor. */
  cursor: number;
}

/**
 * The log events after `cursor`. `announced` holds the steps (`attempt:idx`) this reader was
 * already told about; it is updated, so a follower passes the same set to every read.
 */
export async function readLogEvents(database: Database, jobId: number, cursor: number, announced = new Set<string>()): Promise<LogEventPage> {
  const batch = await readLogChunksSince(database.db, jobId, cursor);
  return { events: orderLogBatch(batch, announced), cursor: batch.cursor };
}

const stepKey = (attempt: number, idx: number) => `${attempt}:${idx}`;

/**
 * Puts a batch in cursor order. Entry changes past the batch's cursor (a batch cut at its chunk
 * limit) are left for the next read; they only serve to announce their step.
 */
export function orderLogBatch(batch: LogFollowBatch, announced: Set<string>): LogEvent[] {
  const latest = new Map(batch.entries.map((change) => [stepKey(change.attempt, change.idx), change]));
  type Row = { at: number; change: LogEntryChange; chunk?: never } | { at: number; chunk: LogChunk; change?: never };
  const rows: Row[] = [
    ...batch.entries.filter((change) => change.changeId <= batch.cursor).map((change) => ({ at: change.changeId, change })),
    ...batch.chunks.map((chunk) => ({ at: chunk.id, chunk })),
  ].sort((a, b) => a.at - b.at);

  const events: LogEvent[] = [];
  for (const row of rows) {
    if (row.change) {
      const { change } = row;
      announced.add(stepKey(change.attempt, change.idx));
      events.push({ event: 'entry', id: change.changeId, data: { attempt: change.attempt, idx: change.idx, ...change.entry } });
      continue;
    }
    const chunk = row.chunk;
    const key = stepKey(chunk.attempt, chunk.entryIdx);
    const pending = latest.get(key);
    if (pending && !announced.has(key)) {
      announced.add(key);
      const { exitCode: _exitCode, durationMs: _durationMs, ...start } = pending.entry;
      events.push({ event: 'entry', data: { attempt: pending.attempt, idx: pending.idx, ...start } });
    }
    events.push({ event: 'output', id: chunk.id, data: chunk });
  }
  return events;
}

export interface FollowOptions {
  /** Stops following when aborted. */
  signal: AbortSignal;
  recheckMs?: number;
}

/**
 * Sends a job's log events after `cursor` until the job is final and everything was sent (then
 * `end`), the job disappears, or `signal` aborts. Woken by the database's job-log notifications,
 * with a re-read every `recheckMs` in case one was lost.
 */
export async function followLogEvents(
  database: Database,
  jobId: number,
  cursor: number,
  send: (event: LogEvent) => Promise<void>,
  options: FollowOptions,
): Promise<void> {
  const { signal } = options;
  const wake = new Wakeup(signal);
  const unsubscribe = database.notifier.subscribeJobLogs((id) => {
    if (id === jobId) wake.ring();
  });
  const announced = new Set<string>();
  let lastState: JobState | undefined;
  try {
    while (!signal.aborted) {
      wake.reset();
      // Read the state first: a job seen final here has no output written after the read below.
      const job = await getJob(database.db, jobId);
      if (!job) return;
      const page = await readLogEvents(database, jobId, cursor, announced);
      for (const event of page.events) await send(event);
      const moved = page.cursor !== cursor;
      cursor = page.cursor;
      if (job.state !== lastState) {
        lastState = job.state;
        await send({ event: 'state', data: { state: job.state, failureMessage: job.failureMessage } });
      }
      if (TERMINAL_STATES.includes(job.state) && !moved) {
        await send({ event: 'end', data: { state: job.state } });
        return;
      }
      if (!moved) await wake.wait(options.recheckMs ?? LOG_FOLLOW_RECHECK_MS);
    }
  } finally {
    unsubscribe();
  }
}

/** A notification that may arrive at any time: one that came since `reset()` ends the next `wait` at once. */
class Wakeup {
  private rung = false;
  private resolve: (() => void) | undefined;

  constructor(signal: AbortSignal) {
    signal.addEventListener('abort', () => this.ring(), { once: true });
  }

  reset(): void {
    this.rung = false;
  }

  ring(): void {
    this.rung = true;
    this.resolve?.();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.rung) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.resolve = undefined;
        resolve();
      }
      this.resolve = done;
    });
  }
}
