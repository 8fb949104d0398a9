import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { PublishError, type MetricSink, type QueueSizeSample } from './sink.js';

export const CLOUDWATCH_METRIC_NAME = 'src_executors_queue_size';

export interface CloudWatchSinkOptions {
  namespace: string;
  region: string;
  /** Without them the SDK's default chain applies (environment, instance profile, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined } | undefined;
  /** Another endpoint than the region's (a VPC endpoint, or a local server in tests). */
  endpoint?: string | undefined;
}

/** PutMetricData of `src_executors_queue_size` with the dimensions `queueName` and `environment`. */
export function createCloudWatchSink(options: CloudWatchSinkOptions): MetricSink {
  const client = new CloudWatchClient({
    region: options.region,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    maxAttempts: 1, // the reporter retries with its own back-off
  });
  return {
    cloud: 'aws',
    async publish(sample: QueueSizeSample) {
      const command = new PutMetricDataCommand({
        Namespace: options.namespace,
        MetricData: [
          {
            MetricName: CLOUDWATCH_METRIC_NAME,
            Unit: 'Count',
            Value: sample.value,
            Dimensions: [
              { Name: 'queueName', Value: sample.queueName },
              { Name: 'environment', Value: sample.environment },
            ],
          },
        ],
      });
      try {
        await client.send(command);
      } catch (err) {
        throw new PublishError('aws', `PutMetricData failed: ${(err as Error).message}`, { cause: err });
      }
    },
    async close() {
      client.destroy();
    },
  };
}
