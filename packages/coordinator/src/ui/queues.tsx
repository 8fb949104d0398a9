/** @jsxImportSource hono/jsx */
import type { Hono, MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { JOB_STATES, type JobState } from '@sandfleet/protocol';
import { queueCounts, queueWaitStats, type QueueWaitStats } from '@sandfleet/db';
import type { AppDeps } from '../deps.js';
import { StateBadge } from './jobs.js';
import type { PageRenderer } from './layout.js';
import type { UiEnv } from './session.js';

/** Pickup latency is measured over jobs dequeued within this window. */
export const PICKUP_WINDOW_MS = 3_600_000;

/**
 * The autoscaling inputs of the Terraform executor modules: the instance group follows
 * ceil(queue size / jobs_per_instance_scaling), clamped to [min_replicas, max_replicas]. The
 * Google module's default jobs_per_instance_scaling is 20 (AWS: 360); min and max default to 1.
 */
export interface ScalingInput {
  jobsPerInstance: number;
  minReplicas: number;
  /** undefined: no upper bound. */
  maxReplicas: number | undefined;
}

const count = (max: number) => z.preprocess((v) => (v === '' ? undefined : v), z.coerce.number().int().min(0).max(max).optional());
const ScalingQuery = z.object({
  jobs_per_instance_scaling: count(1_000_000).refine((n) => n === undefined || n > 0, 'must be at least 1'),
  min_replicas: count(100_000),
  max_replicas: count(100_000),
});

/** Reads the form's GET parameters; invalid ones fall back to the defaults and are reported. */
export function parseScaling(query: Record<string, string>): { input: ScalingInput; error?: string } {
  const parsed = ScalingQuery.safeParse(query);
  const defaults: ScalingInput = { jobsPerInstance: 20, minReplicas: 1, maxReplicas: undefined };
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { input: defaults, error: `${issue.path.join('.')}: ${issue.message}` };
  }
  const input = {
    jobsPerInstance: parsed.data.jobs_per_instance_scaling ?? defaults.jobsPerInstance,
    minReplicas: parsed.data.min_replicas ?? defaults.minReplicas,
    maxReplicas: parsed.data.max_replicas,
  };
  if (input.maxReplicas !== undefined && input.maxReplicas < input.minReplicas) return { input: defaults, error: 'max_replicas: must not be below min_replicas' };
  return { input };
}

/** Instances the autoscaler asks for at this queue size (the Terraform modules' rule). */
export function instancesFor(queueSize: number, scaling: ScalingInput): number {
  const wanted = Math.ceil(queueSize / scaling.jobsPerInstance);
  return Math.min(scaling.maxReplicas ?? Infinity, Math.max(scaling.minReplicas, wanted));
}

/** The number autoscaling follows (src_executor_total): queued + errored + processing. */
export function queueSize(counts: Record<JobState, number>): number {
  return counts.queued + counts.errored + counts.processing;
}

/** A wait as people read it: "850 ms", "42 s", "3 min 5 s", "2 h 10 min". */
export function formatWait(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

interface QueueRow {
  name: string;
  counts: Record<JobState, number>;
  wait: QueueWaitStats | undefined;
}

export function registerQueuesPage(app: Hono<UiEnv>, deps: AppDeps, page: PageRenderer, signedIn: MiddlewareHandler<UiEnv>): void {
  app.get('/queues', signedIn, async (c) => {
    const db = deps.database.db;
    const [counts, waits] = await Promise.all([queueCounts(db), queueWaitStats(db, PICKUP_WINDOW_MS)]);
    const names = [...new Set([...deps.config.queues.names, ...Object.keys(counts)])];
    const queues = names.map((name) => ({
      name,
      counts: Object.fromEntries(JOB_STATES.map((s) => [s, counts[name]?.[s] ?? 0])) as Record<JobState, number>,
      wait: waits[name],
    }));
    const scaling = parseScaling(c.req.query());
    return page(c, 'queues', 'Queues', <QueuesPage queues={queues} scaling={scaling.input} scalingError={scaling.error} />);
  });
}

export function QueuesPage(props: { queues: QueueRow[]; scaling: ScalingInput; scalingError?: string | undefined }) {
  const total = props.queues.reduce((sum, q) => sum + queueSize(q.counts), 0);
  return (
    <>
      <h1>Queues</h1>
      <table>
        <thead>
          <tr>
            <th scope="col">Queue</th>
            {JOB_STATES.map((s) => (
              <th scope="col" class="num">
                <StateBadge state={s} />
              </th>
            ))}
            <th scope="col" class="num">Oldest queued</th>
            <th scope="col" class="num" title="dequeue time − queued time, jobs dequeued in the last hour">Pickup p50</th>
            <th scope="col" class="num">Pickup p95</th>
            <th scope="col" class="num">Picked up (1 h)</th>
          </tr>
        </thead>
        <tbody>
          {props.queues.map((q) => (
            <tr class="queue" data-queue={q.name}>
              <th scope="row">
                <a href={`/jobs?queue=${encodeURIComponent(q.name)}`}>{q.name}</a>
              </th>
              {JOB_STATES.map((s) => (
                <td class="num" data-state={s}>
                  <a href={`/jobs?queue=${encodeURIComponent(q.name)}&state=${s}`}>{q.counts[s]}</a>
                </td>
              ))}
              <td class="num" data-figure="oldest-queued">{formatWait(q.wait?.oldestQueuedMs ?? null)}</td>
              <td class="num" data-figure="pickup-p50">{formatWait(q.wait?.pickupP50Ms ?? null)}</td>
              <td class="num" data-figure="pickup-p95">{formatWait(q.wait?.pickupP95Ms ?? null)}</td>
              <td class="num" data-figure="picked-up">{q.wait?.pickedUp ?? 0}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">Pickup latency: how long a job waited from being queued (or requeued) until an executor dequeued it, over jobs dequeued in the last hour.</p>

      <h2 id="autoscaling-title">Autoscaling</h2>
      <form class="filters" method="get" action="/queues" aria-labelledby="autoscaling-title">
        <label>
          jobs_per_instance_scaling
          <input name="jobs_per_instance_scaling" type="number" min="1" value={String(props.scaling.jobsPerInstance)} required />
        </label>
        <label>
          min_replicas
          <input name="min_replicas" type="number" min="0" value={String(props.scaling.minReplicas)} />
        </label>
        <label>
          max_replicas
          <input name="max_replicas" type="number" min="0" value={props.scaling.maxReplicas === undefined ? '' : String(props.scaling.maxReplicas)} placeholder="no limit" />
        </label>
        <button type="submit">Compute</button>
      </form>
      {props.scalingError ? (
        <p class="error" role="alert">
          {props.scalingError} (showing the defaults)
        </p>
      ) : null}
      <table id="autoscaling">
        <thead>
          <tr>
            <th scope="col">Executors serving</th>
            <th scope="col" class="num">Queue size</th>
            <th scope="col" class="num">Instances</th>
          </tr>
        </thead>
        <tbody>
          {props.queues.map((q) => (
            <tr class="scaling" data-queue={q.name}>
              <th scope="row">{q.name}</th>
              <td class="num" data-figure="queue-size">{queueSize(q.counts)}</td>
              <td class="num" data-figure="instances">{instancesFor(queueSize(q.counts), props.scaling)}</td>
            </tr>
          ))}
          <tr class="scaling" data-queue="all">
            <th scope="row">all queues ({props.queues.map((q) => q.name).join(', ')})</th>
            <td class="num" data-figure="queue-size">{total}</td>
            <td class="num" data-figure="instances">{instancesFor(total, props.scaling)}</td>
          </tr>
        </tbody>
      </table>
      <p class="muted">
        Queue size is queued + errored + processing jobs, the <code>src_executor_total</code> metric an instance group scales on. The Terraform executor modules ask for
        ceil(queue size / jobs_per_instance_scaling) instances, clamped to [min_replicas, max_replicas] (defaults: 20 jobs per instance on Google Cloud, 360 on AWS; 1
        replica); executors serving several queues scale on the sum.
      </p>
    </>
  );
}
