import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { FakeGoogleOAuth } from './google-oauth.js';
import type { TestCertificate } from './tls.js';

/**
 * Cloud Monitoring's MetricService over gRPC and TLS on loopback, built from the protos that ship
 * in @google-cloud/monitoring. CreateTimeSeries checks what the real service checks for a custom
 * metric on the `global` resource: a bearer token issued by the token endpoint, the project name,
 * metric type and labels, resource labels, one GAUGE/INT64 point with a sane end time, and no two
 * points of one series closer than the sampling period. Everything else is UNIMPLEMENTED.
 */
export interface FakeCloudMonitoringOptions {
  projectId: string;
  oauth: FakeGoogleOAuth;
  certificate: TestCertificate;
  /** Cloud Monitoring refuses points of one series written more often than this (5 s). */
  samplingPeriodMs?: number;
}

export interface RecordedPoint {
  metricType: string;
  labels: Record<string, string>;
  resource: { type: string; labels: Record<string, string> };
  value: number;
  endTimeMs: number;
}

interface Rejection {
  code: grpc.status;
  details: string;
}

const require = createRequire(import.meta.url);
const MONITORING_PROTOS = path.join(path.dirname(require.resolve('@google-cloud/monitoring/package.json')), 'build/protos');
// google/api/*.proto and friends ship with google-gax, the SDK's own dependency.
const GAX_PROTOS = path.resolve(path.dirname(createRequire(MONITORING_PROTOS).resolve('google-gax')), '../protos');
const LABEL_KEY = /^[a-zA-Z][a-zA-Z0-9_]{0,99}$/;

export async function startFakeCloudMonitoring(options: FakeCloudMonitoringOptions) {
  const definition = protoLoader.loadSync('google/monitoring/v3/metric_service.proto', {
    includeDirs: [MONITORING_PROTOS, GAX_PROTOS],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as any;
  const service = loaded.google.monitoring.v3.MetricService.service as grpc.ServiceDefinition;
  const points: RecordedPoint[] = [];
  const rejections: Rejection[] = [];
  const lastPointAt = new Map<string, number>();
  let forcedFailure: grpc.status | undefined;
  const samplingPeriodMs = options.samplingPeriodMs ?? 5_000;

  const server = new grpc.Server();
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(service)) {
    handlers[method] = (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: grpc.status.UNIMPLEMENTED, details: `${method} is not served here` });
  }
  handlers.CreateTimeSeries = (call: grpc.ServerUnaryCall<any, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const reject = (code: grpc.status, details: string) => {
      rejections.push({ code, details });
      callback({ code, details });
    };
    const auth = String(call.metadata.get('authorization')[0] ?? '');
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    if (!token) return reject(grpc.status.UNAUTHENTICATED, 'Request is missing required authentication credential.');
    if (!options.oauth.isValidToken(token)) return reject(grpc.status.UNAUTHENTICATED, 'Request had invalid authentication credentials.');
    if (forcedFailure !== undefined) return reject(forcedFailure, 'failure injected by the test');
    const problem = validate(call.request, options.projectId, samplingPeriodMs, lastPointAt);
    if (problem) return reject(problem.code, problem.details);
    for (const series of call.request.timeSeries) {
      const point = series.points[0];
      const endTimeMs = timestampMs(point.interval.endTime);
      lastPointAt.set(seriesKey(series), endTimeMs);
      points.push({ metricType: series.metric.type, labels: { ...series.metric.labels }, resource: { type: series.resource.type, labels: { ...series.resource.labels } }, value: Number(point.value.int64Value), endTimeMs });
    }
    callback(null, {});
  };
  server.addService(service, handlers);
  const credentials = grpc.ServerCredentials.createSsl(null, [{ private_key: options.certificate.key, cert_chain: options.certificate.cert }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, bound) => (err ? reject(err) : resolve(bound))));
  return {
    endpoint: `127.0.0.1:${port}`,
    points,
    rejections,
    /** Answer every authenticated call with this status until called with undefined. */
    failWith(code: grpc.status | undefined) {
      forcedFailure = code;
    },
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}
export type FakeCloudMonitoring = Awaited<ReturnType<typeof startFakeCloudMonitoring>>;
export { grpc };

function timestampMs(ts: { seconds?: string; nanos?: number } | undefined): number {
  return Number(ts?.seconds ?? 0) * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6);
}

const seriesKey = (series: any) => JSON.stringify([series.metric.type, Object.entries(series.metric.labels ?? {}).sort(), series.resource.type, Object.entries(series.resource.labels ?? {}).sort()]);

function validate(request: any, projectId: string, samplingPeriodMs: number, lastPointAt: Map<string, number>): Rejection | undefined {
  const invalid = (details: string) => ({ code: grpc.status.INVALID_ARGUMENT, details });
  if (request.name !== `projects/${projectId}`) {
    return /^projects\/[^/]+$/.test(request.name ?? '') ? { code: grpc.status.PERMISSION_DENIED, details: `Permission monitoring.timeSeries.create denied (or the resource may not exist): ${request.name}` } : invalid(`Field name had an invalid value of "${request.name}"`);
  }
  const list = request.timeSeries ?? [];
  if (list.length < 1 || list.length > 200) return invalid('timeSeries must hold 1 to 200 series');
  const now = Date.now();
  for (const [i, series] of list.entries()) {
    const at = `timeSeries[${i}]`;
    const type = series.metric?.type ?? '';
    if (!/^custom\.googleapis\.com\/[a-zA-Z0-9_\/.-]+$/.test(type)) return invalid(`${at}.metric.type "${type}" is not a custom metric type`);
    for (const [key, value] of Object.entries(series.metric.labels ?? {})) {
      if (!LABEL_KEY.test(key)) return invalid(`${at}.metric.labels: invalid label key "${key}"`);
      if (typeof value !== 'string' || Buffer.byteLength(value) > 1024) return invalid(`${at}.metric.labels[${key}] is too long`);
    }
    if (series.resource?.type !== 'global') return invalid(`${at}.resource.type must be "global" here, got "${series.resource?.type}"`);
    const resourceLabels = Object.keys(series.resource.labels ?? {});
    if (series.resource.labels?.project_id !== projectId || resourceLabels.length !== 1) return invalid(`${at}.resource.labels must be exactly {project_id: "${projectId}"}`);
    if (series.metricKind !== undefined && series.metricKind !== 'GAUGE') return invalid(`${at}.metricKind must be GAUGE, got ${series.metricKind}`);
    if (series.valueType !== undefined && series.valueType !== 'INT64') return invalid(`${at}.valueType must be INT64, got ${series.valueType}`);
    if (!Array.isArray(series.points) || series.points.length !== 1) return invalid(`${at}.points must hold exactly one point`);
    const point = series.points[0];
    if (point.value?.value !== 'int64Value') return invalid(`${at}.points[0].value must be an int64Value`);
    if (!point.interval?.endTime) return invalid(`${at}.points[0].interval.endTime is required`);
    const end = timestampMs(point.interval.endTime);
    if (point.interval.startTime && timestampMs(point.interval.startTime) !== end) return invalid(`${at}: a GAUGE point's start time must equal its end time`);
    if (end > now + 5 * 60_000 || end < now - 25 * 3_600_000) return invalid(`${at}: points must be written within 25 hours in the past and 5 minutes in the future`);
    const previous = lastPointAt.get(seriesKey(series));
    if (previous !== undefined && end - previous < samplingPeriodMs) {
      return invalid(`One or more points were written more frequently than the maximum sampling period configured for the metric. ${at}`);
    }
  }
  return undefined;
}
