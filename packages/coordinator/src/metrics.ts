import client from 'prom-client';
import { queueCounts, type Database } from '@sandfleet/db';
import type { PickupStages } from './jobs/pickup-timeline.js';

/** The pickup timeline's histograms, one per stage (jobs/pickup-timeline.ts says where each starts and ends). */
export const PICKUP_TIMELINE_METRICS = {
  queued: 'sandfleet_job_queued_seconds',
  sandbox: 'sandfleet_job_sandbox_setup_seconds',
  workspace: 'sandfleet_job_workspace_setup_seconds',
  steps: 'sandfleet_job_steps_seconds',
  total: 'sandfleet_job_total_seconds',
} as const satisfies Record<keyof PickupStages, string>;

const PICKUP_TIMELINE_HELP: Record<keyof PickupStages, string> = {
  queued: 'Time from enqueue (or requeue) to dequeue, observed at each dequeue.',
  sandbox: 'Time from dequeue to the sandbox being ready (end of the executor\'s setup.<runtime>.start log entry, else the start of its first entry), observed at the final mark.',
  workspace: 'Time from the sandbox being ready to the first step starting (clone, files, scripts), observed at the final mark.',
  steps: 'Time from the first step starting to the final mark.',
  total: 'Time from enqueue (or requeue) to the final mark.',
};

/** Seconds from a millisecond pickup up to an hour-long job. */
const PICKUP_TIMELINE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * The coordinator's Prometheus metrics, in a registry of its own so several apps can live in one
 * process (tests). Queue sizes are read from the database at most every 5 s.
 */
export class Metrics {
  readonly registry = new client.Registry();
  private readonly dequeues: client.Counter<'queue'>;
  private readonly outcomes: client.Counter<'queue' | 'outcome'>;
  private readonly resets: client.Counter<'queue' | 'result'>;
  private readonly uncaught: client.Counter<'kind'>;
  private readonly signIns: client.Counter<'outcome'>;
  private readonly rotations: client.Counter;
  private readonly executorApiSeconds: client.Histogram<'route' | 'method' | 'code'>;
  private readonly executorApiStatements: client.Counter<'route' | 'method'>;
  private readonly pickupTimeline: Record<keyof PickupStages, client.Histogram<'queue'>>;
  private cachedCounts: { at: number; counts: Awaited<ReturnType<typeof queueCounts>> } | undefined;

  constructor(database: Database, queueNames: readonly string[]) {
    client.collectDefaultMetrics({ register: this.registry });
    this.dequeues = new client.Counter({ name: 'sandfleet_dequeues_total', help: 'Jobs handed to executors.', labelNames: ['queue'], registers: [this.registry] });
    this.outcomes = new client.Counter({
      name: 'sandfleet_job_outcomes_total',
      help: 'Final marks reported by executors.',
      labelNames: ['queue', 'outcome'],
      registers: [this.registry],
    });
    this.resets = new client.Counter({
      name: 'sandfleet_record_resets_total',
      help: 'Stalled jobs requeued (result=reset) or failed after too many resets (result=failed).',
      labelNames: ['queue', 'result'],
      registers: [this.registry],
    });
    this.uncaught = new client.Counter({
      name: 'sandfleet_uncaught_errors_total',
      help: 'Errors no handler caught (kind=exception|rejection); logged, and the coordinator kept serving.',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    this.signIns = new client.Counter({
      name: 'sandfleet_ui_sign_ins_total',
      help: 'Web UI sign-in attempts by outcome (ok, wrong_token, rate_limited).',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    this.rotations = new client.Counter({ name: 'sandfleet_executor_secret_rotations_total', help: 'Rotations of the executors\' shared secret.', registers: [this.registry] });
    this.executorApiSeconds = new client.Histogram({
      name: 'sandfleet_executor_api_request_duration_seconds',
      help: 'Executor API requests by route pattern, method and status code (long polls include their wait).',
      labelNames: ['route', 'method', 'code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    this.executorApiStatements = new client.Counter({
      name: 'sandfleet_executor_api_db_statements_total',
      help: 'Database statements (round trips, BEGIN and COMMIT included) sent while serving executor API requests, by route pattern; divide by the request count for statements per request.',
      labelNames: ['route', 'method'],
      registers: [this.registry],
    });
    this.pickupTimeline = Object.fromEntries(
      (Object.keys(PICKUP_TIMELINE_METRICS) as (keyof PickupStages)[]).map((stage) => [
        stage,
        new client.Histogram({
          name: PICKUP_TIMELINE_METRICS[stage],
          help: PICKUP_TIMELINE_HELP[stage],
          labelNames: ['queue'],
          buckets: PICKUP_TIMELINE_BUCKETS,
          registers: [this.registry],
        }),
      ]),
    ) as Record<keyof PickupStages, client.Histogram<'queue'>>;
    const self = this;
    new client.Gauge({
      name: 'src_executor_total',
      help: 'Queue size (queued + errored + processing), the number autoscaling follows.',
      labelNames: ['queue'],
      registers: [this.registry],
      async collect() {
        const counts = await self.counts(database);
        for (const queue of queueNames) {
          const c = counts[queue];
          this.set({ queue }, (c?.queued ?? 0) + (c?.errored ?? 0) + (c?.processing ?? 0));
        }
      },
    });
  }

  /** A job handed to an executor; its wait in the queue is the timeline's first stage. */
  dequeued(queue: string, job: { queuedAt: Date; startedAt: Date | null }): void {
    this.dequeues.inc({ queue });
    if (job.startedAt) this.pickupTimeline.queued.observe({ queue }, Math.max(0, job.startedAt.getTime() - job.queuedAt.getTime()) / 1000);
  }

  /** The stages of a finished attempt after its wait in the queue (observed at dequeue). */
  attemptFinished(queue: string, stages: PickupStages): void {
    for (const stage of ['sandbox', 'workspace', 'steps', 'total'] as const) {
      const value = stages[stage];
      if (value !== undefined) this.pickupTimeline[stage].observe({ queue }, value);
    }
  }

  finished(queue: string, outcome: string): void {
    this.outcomes.inc({ queue, outcome });
  }

  stalled(queue: string, reset: number, failed: number): void {
    if (reset) this.resets.inc({ queue, result: 'reset' }, reset);
    if (failed) this.resets.inc({ queue, result: 'failed' }, failed);
  }

  uncaughtError(kind: 'exception' | 'rejection'): void {
    this.uncaught.inc({ kind });
  }

  signIn(outcome: 'ok' | 'wrong_token' | 'rate_limited'): void {
    this.signIns.inc({ outcome });
  }

  executorSecretRotated(): void {
    this.rotations.inc();
  }

  /** One served executor API request; `route` is the matched pattern, never the raw path. */
  executorApiRequest(request: { route: string; method: string; code: number; seconds: number; statements: number }): void {
    this.executorApiSeconds.observe({ route: request.route, method: request.method, code: String(request.code) }, request.seconds);
    this.executorApiStatements.inc({ route: request.route, method: request.method }, request.statements);
  }

  private async counts(database: Database) {
    if (!this.cachedCounts || Date.now() - this.cachedCounts.at > 5_000) {
      this.cachedCounts = { at: Date.now(), counts: await queueCounts(database.db) };
    }
    return this.cachedCounts.counts;
  }
}
