import client from 'prom-client';
import { queueCounts, type Database } from '@sandfleet/db';

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

  dequeued(queue: string): void {
    this.dequeues.inc({ queue });
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
