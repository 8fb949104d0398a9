import fs from 'node:fs';
import { MetricServiceClient } from '@google-cloud/monitoring';
import { grpc } from 'google-gax';
import { ServiceAccountTokenSource, parseServiceAccountKey } from './service-account.js';
import { PublishError, type MetricSink, type QueueSizeSample } from './sink.js';

export const CLOUD_MONITORING_METRIC_TYPE = 'custom.googleapis.com/executors/queue/size';

export interface CloudMonitoringSinkOptions {
  projectId: string;
  /** The service-account JSON key (EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE[_CONTENT]). */
  serviceAccountJson: string;
  /** host:port of another MetricService than monitoring.googleapis.com:443 (a test server). */
  endpoint?: string | undefined;
  /** PEM file of the CA the endpoint's TLS certificate is checked against instead of the system roots. */
  caFile?: string | undefined;
  /**
   * Cloud Monitoring refuses two points of one series closer than its sampling period (5 s). A
   * point that comes a little early (timer jitter) is stamped this long after the previous one.
   */
  minPointSpacingMs?: number | undefined;
}

/**
 * MetricService.CreateTimeSeries of `custom.googleapis.com/executors/queue/size` (GAUGE, INT64)
 * on the `global` resource, with the labels `queueName` and `environment`.
 */
export function createCloudMonitoringSink(options: CloudMonitoringSinkOptions): MetricSink {
  const key = parseServiceAccountKey(options.serviceAccountJson);
  const tokens = new ServiceAccountTokenSource(key);
  // The channel carries our own bearer tokens: the SDK's auth library ignores the key's token_uri.
  const callCredentials = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    tokens.accessToken().then(
      (token) => {
        const metadata = new grpc.Metadata();
        metadata.set('authorization', `Bearer ${token}`);
        callback(null, metadata);
      },
      (err: Error) => callback(err),
    );
  });
  const tls = grpc.credentials.createSsl(options.caFile ? fs.readFileSync(options.caFile) : null);
  const endpoint = options.endpoint ? splitHostPort(options.endpoint) : undefined;
  const client = new MetricServiceClient({
    projectId: options.projectId,
    // Given credentials, the SDK's auth library has no reason to probe the GCE metadata server.
    credentials: { client_email: key.client_email, private_key: key.private_key },
    sslCreds: grpc.credentials.combineChannelCredentials(tls, callCredentials),
    ...(endpoint ? { apiEndpoint: endpoint.host, port: endpoint.port } : {}),
  });
  const name = client.projectPath(options.projectId);
  const spacingMs = options.minPointSpacingMs ?? 5_000;
  const lastEndMs = new Map<string, number>();
  return {
    cloud: 'gcp',
    async publish(sample: QueueSizeSample) {
      const series = JSON.stringify([sample.queueName, sample.environment]);
      const endMs = Math.max(Date.now(), (lastEndMs.get(series) ?? 0) + spacingMs);
      try {
        await client.createTimeSeries(
          {
            name,
            timeSeries: [
              {
                metric: { type: CLOUD_MONITORING_METRIC_TYPE, labels: { queueName: sample.queueName, environment: sample.environment } },
                resource: { type: 'global', labels: { project_id: options.projectId } },
                metricKind: 'GAUGE',
                valueType: 'INT64',
                points: [
                  {
                    interval: { endTime: { seconds: Math.floor(endMs / 1000), nanos: (endMs % 1000) * 1_000_000 } },
                    value: { int64Value: Math.trunc(sample.value) },
                  },
                ],
              },
            ],
          },
          { retry: null, timeout: 30_000 }, // the reporter retries with its own back-off
        );
        lastEndMs.set(series, endMs);
      } catch (err) {
        throw new PublishError('gcp', `CreateTimeSeries failed: ${(err as Error).message}`, { cause: err });
      }
    },
    async close() {
      await client.close();
    },
  };
}

function splitHostPort(endpoint: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(endpoint);
  if (!match) return { host: endpoint, port: 443 };
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}
