/**
 * Metric sinks for cloud autoscalers. The cloud SDKs are imported only when a sink of theirs is
 * created, so a coordinator that publishes to neither never loads them.
 */
import type { CloudWatchSinkOptions } from './cloudwatch.js';
import type { CloudMonitoringSinkOptions } from './cloud-monitoring.js';
import type { MetricSink } from './sink.js';

export { CLOUDS, PublishError, type Cloud, type MetricSink, type QueueSizeSample } from './sink.js';
export { formatQueueNamesForMetrics } from './queue-label.js';
export type { CloudWatchSinkOptions } from './cloudwatch.js';
export type { CloudMonitoringSinkOptions } from './cloud-monitoring.js';
export { ServiceAccountError, parseServiceAccountKey, signAssertion, type ServiceAccountKey } from './service-account.js';

export async function createCloudWatchSink(options: CloudWatchSinkOptions): Promise<MetricSink> {
  return (await import('./cloudwatch.js')).createCloudWatchSink(options);
}

export async function createCloudMonitoringSink(options: CloudMonitoringSinkOptions): Promise<MetricSink> {
  return (await import('./cloud-monitoring.js')).createCloudMonitoringSink(options);
}
