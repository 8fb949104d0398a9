import type { AttemptTimelineFacts } from '@sandfleet/db';

/**
 * A finished attempt's pickup timeline, split into stages (seconds):
 *   queued → dequeued → sandbox ready → first step started → finished.
 *
 * Queued, dequeued and finished are the database's clock. Sandbox ready and first step started
 * come from the executor's log entries, in its clock: each is clamped between its neighbours, so
 * a skewed executor clock shifts time between adjacent stages but never makes one negative, and the
 * four stages always add up to `total`.
 *
 * - sandbox ready: the end of the first `setup.<runtime>.start` entry (our isolating runtimes,
 *   Sourcegraph's `setup.firecracker.start`); without one (nothing to start: the shell runtime,
 *   Sourcegraph's docker runtime) the start of the first entry, when the executor began the job.
 * - first step started: the start of the first `step.*` entry.
 * A point the entries do not give leaves out the two stages next to it (an attempt that failed
 * before its first step has no `workspace` and no `steps` stage); `queued` and `total` are always
 * there.
 */
export interface PickupStages {
  /** queued → dequeued. */
  queued: number;
  /** dequeued → sandbox ready. */
  sandbox?: number;
  /** sandbox ready → first step started (clone, files, step scripts). */
  workspace?: number;
  /** first step started → finished. */
  steps?: number;
  /** queued → finished. */
  total: number;
}

export function pickupStages(facts: AttemptTimelineFacts): PickupStages | undefined {
  if (!facts.dequeuedAt || !facts.finishedAt) return undefined;
  const queued = facts.queuedAt.getTime();
  const dequeued = Math.max(queued, facts.dequeuedAt.getTime());
  const finished = Math.max(dequeued, facts.finishedAt.getTime());
  const stages: PickupStages = { queued: seconds(dequeued - queued), total: seconds(finished - queued) };

  const rawReady = facts.sandboxEntry ? sandboxReadyAt(facts.sandboxEntry) : parseTime(facts.firstEntryStartTime);
  const ready = rawReady === undefined ? undefined : clamp(rawReady, dequeued, finished);
  const rawStep = parseTime(facts.firstStepStartTime);
  const firstStep = rawStep === undefined ? undefined : clamp(rawStep, ready ?? dequeued, finished);

  if (ready !== undefined) stages.sandbox = seconds(ready - dequeued);
  if (ready !== undefined && firstStep !== undefined) stages.workspace = seconds(firstStep - ready);
  if (firstStep !== undefined) stages.steps = seconds(finished - firstStep);
  return stages;
}

function sandboxReadyAt(entry: { startTime: string; durationMs: number | null }): number | undefined {
  const start = parseTime(entry.startTime);
  if (start === undefined || entry.durationMs === null) return undefined;
  return start + entry.durationMs;
}

/** An entry's start time as the executor sent it (RFC 3339); anything else counts as absent. */
function parseTime(text: string | null): number | undefined {
  if (text === null) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

function seconds(ms: number): number {
  return ms / 1000;
}
