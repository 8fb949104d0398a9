import client from 'prom-client';
import type { Logger } from 'pino';
import { queueSizes, type Database } from '@sandfleet/db';
import { createCloudMonitoringSink, createCloudWatchSink, formatQueueNamesForMetrics, type MetricSink, type QueueSizeSample } from '@sandfleet/autoscaling';
import type { MetricPublisherConfig } from '../metric-publisher-config.js';
import type { QueueCatalog } from '../queue-catalog.js';
import type { Metrics } from '../metrics.js';
import { startPeriodic } from './periodic.js';

export interface MetricReporterDeps {
  config: { metricPublisher: MetricPublisherConfig; queues: Pick<QueueCatalog, 'names'> };
  database: Database;
  metrics: Metrics;
  log: Logger;
}

/**
 * Publishes queue sizes for cloud autoscalers: every intervalMs each queue's size (queued +
 * errored + processing), every multiQueueIntervalMs the sum over all queues under the multi-queue
 * label (all of the catalog's queues: `batches_codeintel` unless the site config declares more). Each cloud gets its EXECUTOR_ALLOCATIONS share. A cloud that fails is paused with an
 * exponential back-off; failures are logged and counted, never fatal. Returns the stop function.
 */
export async function startMetricReporter(deps: MetricReporterDeps): Promise<() => Promise<void>> {
  const settings = deps.config.metricPublisher;
  const queueNames = deps.config.queues.names;
  const sinks = await createSinks(settings);
  if (sinks.length === 0) return async () => {};
  const counters = publishCounters(deps.metrics.registry);
  const publishers = sinks.map((sink) => new BackedOffPublisher(sink, settings, counters, deps.log));
  deps.log.info({ clouds: sinks.map((s) => s.cloud), environment: settings.environmentLabel }, 'publishing queue sizes for autoscaling');

  const publishAll = (samples: (cloud: MetricSink['cloud']) => QueueSizeSample[]) =>
    Promise.all(publishers.map((publisher) => publisher.publish(samples(publisher.cloud))));
  const share = (queue: string, cloud: MetricSink['cloud'], size: number) => Math.trunc(size * (settings.allocations[queue]?.[cloud] ?? 1));

  const stopPerQueue = startPeriodic('queue size publisher', settings.intervalMs, deps.log, async () => {
    const sizes = await queueSizes(deps.database.db, queueNames);
    await publishAll((cloud) =>
      queueNames.map((queue) => ({ queueName: queue, environment: settings.environmentLabel, value: share(queue, cloud, sizes[queue]!.size) })),
    );
  });
  const stopMultiQueue = startPeriodic('multi-queue size publisher', settings.multiQueueIntervalMs, deps.log, async () => {
    const sizes = await queueSizes(deps.database.db, queueNames);
    const total = queueNames.reduce((sum, queue) => sum + sizes[queue]!.size, 0);
    // Like Sourcegraph, the multi-queue figure takes the allocation of the first queue.
    const first = [...queueNames].sort()[0]!;
    await publishAll((cloud) => [{ queueName: formatQueueNamesForMetrics(queueNames), environment: settings.environmentLabel, value: share(first, cloud, total) }]);
  });
  return async () => {
    stopPerQueue();
    stopMultiQueue();
    await Promise.allSettled(sinks.map((sink) => sink.close()));
  };
}

async function createSinks(settings: MetricPublisherConfig): Promise<MetricSink[]> {
  const sinks: MetricSink[] = [];
  if (settings.aws) sinks.push(await createCloudWatchSink(settings.aws));
  if (settings.gcp) sinks.push(await createCloudMonitoringSink({ ...settings.gcp, minPointSpacingMs: Math.min(5_000, settings.intervalMs) }));
  return sinks;
}

interface PublishCounters {
  published: client.Counter<'cloud'>;
  errors: client.Counter<'cloud'>;
}

function publishCounters(registry: client.Registry): PublishCounters {
  return {
    published: new client.Counter({
      name: 'sandfleet_autoscaling_samples_published_total',
      help: 'Queue-size samples a cloud metric API accepted.',
      labelNames: ['cloud'],
      registers: [registry],
    }),
    errors: new client.Counter({
      name: 'sandfleet_autoscaling_publish_errors_total',
      help: 'Failed attempts to publish queue sizes to a cloud metric API (each pauses that cloud with a back-off).',
      labelNames: ['cloud'],
      registers: [registry],
    }),
  };
}

/** One cloud's publishing: after a failure it skips ticks for intervalMs × 2^(failures-1), up to maxBackoffMs. */
class BackedOffPublisher {
  private failures = 0;
  private pausedUntil = 0;
  /** Attempts run one at a time, so one that fails pauses the ones queued behind it. */
  private previous: Promise<void> = Promise.resolve();

  constructor(
    private readonly sink: MetricSink,
    private readonly settings: MetricPublisherConfig,
    private readonly counters: PublishCounters,
    private readonly log: Logger,
  ) {}

  get cloud() {
    return this.sink.cloud;
  }

  publish(samples: QueueSizeSample[]): Promise<void> {
    this.previous = this.previous.then(() => this.attempt(samples));
    return this.previous;
  }

  private async attempt(samples: QueueSizeSample[]): Promise<void> {
    if (Date.now() < this.pausedUntil) return;
    try {
      for (const sample of samples) {
        await this.sink.publish(sample);
        this.counters.published.inc({ cloud: this.cloud });
      }
    } catch (err) {
      this.counters.errors.inc({ cloud: this.cloud });
      this.failures++;
      const retryInMs = Math.min(this.settings.intervalMs * 2 ** Math.min(this.failures - 1, 30), this.settings.maxBackoffMs);
      this.pausedUntil = Date.now() + retryInMs;
      this.log.warn({ error: (err as Error).message, cloud: this.cloud, failures: this.failures, retryInMs }, 'publishing queue sizes failed; retrying after a back-off');
      return;
    }
    if (this.failures > 0) this.log.info({ cloud: this.cloud, failures: this.failures }, 'publishing queue sizes works again');
    this.failures = 0;
    this.pausedUntil = 0;
  }
}
