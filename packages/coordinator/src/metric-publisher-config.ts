import fs from 'node:fs';
import { parseDuration } from '@sandfleet/protocol';
import { CLOUDS, ServiceAccountError, parseServiceAccountKey, type Cloud } from '@sandfleet/autoscaling';

/** Settings of the autoscaling metric publisher (docs/deploy.md, "Autoscaling metric"). */
export interface MetricPublisherConfig {
  /** The `environment` dimension/label (EXECUTOR_METRIC_ENVIRONMENT_LABEL, default `dev`). */
  environmentLabel: string;
  /** Share of each queue's size reported to each cloud (EXECUTOR_ALLOCATIONS). */
  allocations: Record<string, Record<Cloud, number>>;
  aws: AwsMetricConfig | undefined;
  gcp: GcpMetricConfig | undefined;
  /** Per-queue publishing period (SANDFLEET_METRIC_INTERVAL, default 5s). */
  intervalMs: number;
  /** Multi-queue publishing period (SANDFLEET_MULTIQUEUE_METRIC_INTERVAL, default 30s). */
  multiQueueIntervalMs: number;
  /** Longest pause of a failing cloud before the next attempt (SANDFLEET_METRIC_MAX_BACKOFF, default 5m). */
  maxBackoffMs: number;
}

export interface AwsMetricConfig {
  namespace: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string | undefined } | undefined;
  endpoint: string | undefined;
}

export interface GcpMetricConfig {
  projectId: string;
  serviceAccountJson: string;
  endpoint: string | undefined;
  caFile: string | undefined;
}

/** Reads the EXECUTOR_METRIC_* variables; appends what is wrong to `problems`. */
export function loadMetricPublisherConfig(env: NodeJS.ProcessEnv, queueNames: readonly string[], problems: string[]): MetricPublisherConfig {
  const duration = (name: string, fallback: number) => {
    const raw = env[name];
    if (!raw) return fallback;
    const parsed = parseDuration(raw);
    if (parsed.ok && parsed.value > 0) return parsed.value;
    problems.push(`invalid value ${JSON.stringify(raw)} for ${name}: ${parsed.ok ? 'must be positive' : parsed.error}`);
    return fallback;
  };
  return {
    environmentLabel: env.EXECUTOR_METRIC_ENVIRONMENT_LABEL || 'dev',
    allocations: parseAllocations(env.EXECUTOR_ALLOCATIONS, queueNames, problems),
    aws: loadAws(env, problems),
    gcp: loadGcp(env, problems),
    intervalMs: duration('SANDFLEET_METRIC_INTERVAL', 5_000),
    multiQueueIntervalMs: duration('SANDFLEET_MULTIQUEUE_METRIC_INTERVAL', 30_000),
    maxBackoffMs: duration('SANDFLEET_METRIC_MAX_BACKOFF', 5 * 60_000),
  };
}

/**
 * EXECUTOR_ALLOCATIONS: `{"<queue>": {"aws": 0..1, "gcp": 0..1}}`. A queue that is not listed
 * reports its full size to every configured cloud; a listed queue reports only to the clouds it
 * lists (a missing cloud counts as 0), as Sourcegraph does.
 */
export function parseAllocations(raw: string | undefined, queueNames: readonly string[], problems: string[]): Record<string, Record<Cloud, number>> {
  const full = () => Object.fromEntries(CLOUDS.map((cloud) => [cloud, 1])) as Record<Cloud, number>;
  const allocations: Record<string, Record<Cloud, number>> = Object.fromEntries(queueNames.map((queue) => [queue, full()]));
  if (!raw) return allocations;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    problems.push(`EXECUTOR_ALLOCATIONS is not valid JSON: ${(err as Error).message}`);
    return allocations;
  }
  if (!isObject(json)) {
    problems.push('EXECUTOR_ALLOCATIONS must be a JSON object of queue names');
    return allocations;
  }
  for (const [queue, shares] of Object.entries(json)) {
    if (!queueNames.includes(queue)) {
      problems.push(`EXECUTOR_ALLOCATIONS: unknown queue "${queue}" (known: ${queueNames.join(', ')})`);
      continue;
    }
    if (!isObject(shares)) {
      problems.push(`EXECUTOR_ALLOCATIONS: "${queue}" must be an object of cloud names`);
      continue;
    }
    const allocation = Object.fromEntries(CLOUDS.map((cloud) => [cloud, 0])) as Record<Cloud, number>;
    for (const [cloud, share] of Object.entries(shares)) {
      if (!(CLOUDS as readonly string[]).includes(cloud)) problems.push(`EXECUTOR_ALLOCATIONS: unknown cloud "${cloud}" for queue "${queue}" (known: ${CLOUDS.join(', ')})`);
      else if (typeof share !== 'number' || !(share >= 0 && share <= 1)) problems.push(`EXECUTOR_ALLOCATIONS: ${queue}.${cloud} must be a number from 0 to 1, got ${JSON.stringify(share)}`);
      else allocation[cloud as Cloud] = share;
    }
    allocations[queue] = allocation;
  }
  return allocations;
}

function loadAws(env: NodeJS.ProcessEnv, problems: string[]): AwsMetricConfig | undefined {
  const namespace = env.EXECUTOR_METRIC_AWS_NAMESPACE;
  if (!namespace) return undefined;
  const region = env.EXECUTOR_METRIC_AWS_REGION || env.AWS_REGION || '';
  if (!region) problems.push('EXECUTOR_METRIC_AWS_REGION must be set when EXECUTOR_METRIC_AWS_NAMESPACE is');
  const accessKeyId = env.EXECUTOR_METRIC_AWS_ACCESS_KEY_ID || '';
  const secretAccessKey = env.EXECUTOR_METRIC_AWS_SECRET_ACCESS_KEY || '';
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    problems.push('EXECUTOR_METRIC_AWS_ACCESS_KEY_ID and EXECUTOR_METRIC_AWS_SECRET_ACCESS_KEY must be set together');
  }
  return {
    namespace,
    region,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, sessionToken: env.EXECUTOR_METRIC_AWS_SESSION_TOKEN || undefined } : undefined,
    endpoint: env.SANDFLEET_METRIC_AWS_ENDPOINT || undefined,
  };
}

function loadGcp(env: NodeJS.ProcessEnv, problems: string[]): GcpMetricConfig | undefined {
  const projectId = env.EXECUTOR_METRIC_GCP_PROJECT_ID;
  if (!projectId) return undefined;
  let serviceAccountJson = env.EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE_CONTENT || '';
  const file = env.EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE;
  if (!serviceAccountJson && file) {
    try {
      serviceAccountJson = fs.readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`cannot read EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE ${file}: ${(err as Error).message}`);
    }
  } else if (!serviceAccountJson) {
    problems.push('EXECUTOR_METRIC_GCP_PROJECT_ID needs a service-account key: EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE or _FILE_CONTENT');
  }
  if (serviceAccountJson) {
    try {
      parseServiceAccountKey(serviceAccountJson);
    } catch (err) {
      if (!(err instanceof ServiceAccountError)) throw err;
      problems.push(`EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS: ${err.message}`);
    }
  }
  const caFile = env.SANDFLEET_METRIC_GCP_CA_FILE || undefined;
  if (caFile) {
    try {
      fs.accessSync(caFile, fs.constants.R_OK);
    } catch (err) {
      problems.push(`cannot read SANDFLEET_METRIC_GCP_CA_FILE ${caFile}: ${(err as Error).message}`);
    }
  }
  return { projectId, serviceAccountJson, endpoint: env.SANDFLEET_METRIC_GCP_ENDPOINT || undefined, caFile };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
