/** The clouds a queue size can be published to (the keys of EXECUTOR_ALLOCATIONS). */
export const CLOUDS = ['aws', 'gcp'] as const;
export type Cloud = (typeof CLOUDS)[number];

/** One queue size as the autoscalers read it. */
export interface QueueSizeSample {
  /** A queue name, or the multi-queue label (see formatQueueNamesForMetrics). */
  queueName: string;
  /** The `environment` dimension/label (EXECUTOR_METRIC_ENVIRONMENT_LABEL). */
  environment: string;
  value: number;
}

/** A cloud's metric API. `publish` rejects when the cloud refused or could not be reached. */
export interface MetricSink {
  readonly cloud: Cloud;
  publish(sample: QueueSizeSample): Promise<void>;
  close(): Promise<void>;
}

export class PublishError extends Error {
  constructor(
    readonly cloud: Cloud,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${cloud}: ${message}`, options);
    this.name = 'PublishError';
  }
}
