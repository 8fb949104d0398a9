import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { SandfleetError, parseDuration, parseSize, type ParseResult } from '@sandfleet/protocol';
import { MIN_ADMIN_TOKEN_LENGTH, type DbConfig } from '@sandfleet/db';
import { DequeueCacheConfig, QueueCatalog, QueueDeclarations } from './queue-catalog.js';
import { loadMetricPublisherConfig, type MetricPublisherConfig } from './metric-publisher-config.js';

/**
 * The coordinator's configuration: command-line flags, environment and the site config file are
 * read here, once, and validated into one frozen object that is passed down explicitly.
 */
export class ConfigError extends SandfleetError {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** The Sourcegraph-style site configuration file. */
export const SiteConfig = z
  .object({
    externalURL: z.url().optional(),
    'executors.accessToken': z.string().optional(),
    'executors.frontendURL': z.url().optional(),
    /** Weight and limit of batches and codeintel in the multi-queue dequeue. */
    'executors.multiqueue.dequeueCacheConfig': DequeueCacheConfig.optional(),
    /** Queues beyond batches and codeintel (see queue-catalog.ts). */
    'sandfleet.queues': QueueDeclarations.optional(),
  })
  .loose();
export type SiteConfig = z.infer<typeof SiteConfig>;

export const MIN_ACCESS_TOKEN_LENGTH = 20;

export interface CoordinatorConfig {
  host: string;
  port: number;
  dataDir: string;
  database: DbConfig;
  site: SiteConfig;
  /** undefined when the site config has none: the executor API then answers 500. */
  executorAccessToken: string | undefined;
  /** The URL executors and users reach this coordinator at. */
  externalUrl: string;
  /** From SANDFLEET_ADMIN_TOKEN; when unset one is generated at first start. */
  adminToken: string | undefined;
  /** batches, codeintel and the queues the site config declares. */
  queues: QueueCatalog;
  resetterIntervalMs: number;
  /** An executor is active when its last heartbeat is at most this old (3 × 5 s). */
  executorActiveMs: number;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
  /** SANDFLEET_MAX_BATCH_JOBS, default 1000: most jobs one `POST /api/jobs/batch` may hold. */
  maxBatchJobs: number;
  /** A log follower re-reads this often in case a notification was lost. */
  logFollowRecheckMs: number;
  /** Log bytes stored per job; later output is dropped after one marker line. */
  maxLogBytesPerJob: number;
  /** Serve the locally built demo image under /v2/ (SANDFLEET_SERVE_DEMO_IMAGE; `sandfleet up` sets it). */
  serveDemoImage: boolean;
  /** The janitor deletes executors not seen for this long (SANDFLEET_EXECUTOR_RETENTION, default 168h). */
  executorRetentionMs: number;
  /** How often the janitor runs (SANDFLEET_JANITOR_INTERVAL, default 10m). */
  janitorIntervalMs: number;
  /** PATH for the git processes the coordinator runs (mirrors, the git proxy's upload-pack). */
  gitSearchPath: string;
  /** Wrong admin tokens one client may send to the sign-in form within signInWindowMs; 0 = no limit. */
  signInMaxFailures: number;
  /** SANDFLEET_SIGN_IN_WINDOW, default 10m. */
  signInWindowMs: number;
  /** SANDFLEET_EXECUTOR_SECRET_CACHE, default 5s: how long an accepted executor secret is trusted without a database check; 0 = check every request. */
  executorSecretCacheMs: number;
  /** SANDFLEET_ADMIN_TOKEN_CACHE, default 5s: how long an accepted admin token is trusted without a database check (a revocation through another replica takes effect within it); 0 = check every request. */
  adminTokenCacheMs: number;
  /** The autoscaling metric publisher (EXECUTOR_METRIC_*, EXECUTOR_ALLOCATIONS). */
  metricPublisher: MetricPublisherConfig;
}

/** What the command line needs before, or without, a coordinator configuration. */
export interface CliSettings {
  /** SANDFLEET_LOG_LEVEL, default info. */
  logLevel: string;
  /** EXECUTOR_RUNTIME: the default runtime of `sandfleet up`'s executor. */
  executorRuntime: string;
  /** SANDFLEET_ADMIN_TOKEN: the admin token of client commands (never a flag: argv is public). */
  adminToken: string | undefined;
}

export function loadCliSettings(env: NodeJS.ProcessEnv = process.env): CliSettings {
  return Object.freeze({
    logLevel: env.SANDFLEET_LOG_LEVEL || 'info',
    executorRuntime: env.EXECUTOR_RUNTIME || 'auto',
    adminToken: env.SANDFLEET_ADMIN_TOKEN || undefined,
  });
}

export interface ServeFlags {
  host?: string;
  port?: string | number;
  dataDir?: string;
  siteConfig?: string;
}

export function loadConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): CoordinatorConfig {
  const problems: string[] = [];
  const host = flags.host ?? env.SANDFLEET_HOST ?? '127.0.0.1';
  const port = Number(flags.port ?? env.SANDFLEET_PORT ?? 3080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`--port must be an integer between 0 and 65535, got "${flags.port}"`);
  const dataDir = path.resolve(flags.dataDir ?? env.SANDFLEET_DATA_DIR ?? './data');

  const site = readSiteConfig(flags.siteConfig ?? env.SANDFLEET_SITE_CONFIG, problems);
  const accessToken = site['executors.accessToken'] || undefined;
  if (accessToken !== undefined && accessToken.length < MIN_ACCESS_TOKEN_LENGTH) {
    problems.push(`executors.accessToken must be at least ${MIN_ACCESS_TOKEN_LENGTH} characters long (it has ${accessToken.length})`);
  }

  // Durations and sizes use the grammars the executor uses too (see the protocol package's units).
  const unit = (name: string, fallback: number, parse: (text: string) => ParseResult<number>) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const result = parse(raw);
    if (result.ok) return result.value;
    problems.push(`invalid value ${JSON.stringify(raw)} for ${name}: ${result.error}`);
    return fallback;
  };
  const duration = (name: string, fallback: number) => unit(name, fallback, parseDuration);
  const size = (name: string, fallback: number) => unit(name, fallback, parseSize);
  const integer = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) problems.push(`${name} must be a non-negative integer, got "${raw}"`);
    return Number.isInteger(n) ? n : fallback;
  };
  const stalledMaxAgeMs = duration('SANDFLEET_STALLED_MAX_AGE', 25_000);
  const maxResets = integer('SANDFLEET_MAX_RESETS', 3);
  const resetterIntervalMs = duration('SANDFLEET_RESETTER_INTERVAL', Math.min(5_000, stalledMaxAgeMs));
  const maxBodyBytes = size('SANDFLEET_MAX_BODY_BYTES', 10 * 1024 * 1024);
  const maxBatchJobs = integer('SANDFLEET_MAX_BATCH_JOBS', 1000);
  if (maxBatchJobs === 0) problems.push('SANDFLEET_MAX_BATCH_JOBS must be at least 1');
  const maxLogBytesPerJob = size('SANDFLEET_MAX_LOG_BYTES_PER_JOB', 256 * 1024 * 1024);
  const executorRetentionMs = duration('SANDFLEET_EXECUTOR_RETENTION', 7 * 24 * 3_600_000);
  const janitorIntervalMs = duration('SANDFLEET_JANITOR_INTERVAL', 10 * 60_000);
  const signInMaxFailures = integer('SANDFLEET_SIGN_IN_MAX_FAILURES', 10);
  const signInWindowMs = duration('SANDFLEET_SIGN_IN_WINDOW', 10 * 60_000);
  const executorSecretCacheMs = duration('SANDFLEET_EXECUTOR_SECRET_CACHE', 5_000);
  const adminTokenCacheMs = duration('SANDFLEET_ADMIN_TOKEN_CACHE', 5_000);

  const queues = QueueCatalog.build(site['sandfleet.queues'] ?? [], { stalledMaxAgeMs, maxResets }, site['executors.multiqueue.dequeueCacheConfig']);

  const database: DbConfig = env.DATABASE_URL
    ? { kind: 'postgres', url: env.DATABASE_URL }
    : { kind: 'pglite', dataDir: env.SANDFLEET_PGLITE_DIR ? path.resolve(env.SANDFLEET_PGLITE_DIR) : path.join(dataDir, 'pglite') };

  const adminToken = env.SANDFLEET_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    problems.push(`SANDFLEET_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters, got ${adminToken.length} (e.g. \`openssl rand -hex 32\`)`);
  }

  const metricPublisher = loadMetricPublisherConfig(env, queues.names, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const externalUrl = (site.externalURL ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/$/, '');
  return Object.freeze({
    host,
    port,
    dataDir,
    database,
    site,
    executorAccessToken: accessToken,
    externalUrl,
    adminToken,
    queues,
    resetterIntervalMs,
    executorActiveMs: 15_000,
    maxBodyBytes,
    maxBatchJobs,
    logFollowRecheckMs: 5_000,
    maxLogBytesPerJob,
    serveDemoImage: env.SANDFLEET_SERVE_DEMO_IMAGE === 'true',
    executorRetentionMs,
    janitorIntervalMs,
    gitSearchPath: env.PATH || '/usr/local/bin:/usr/bin:/bin',
    signInMaxFailures,
    signInWindowMs,
    executorSecretCacheMs,
    adminTokenCacheMs,
    metricPublisher,
  });
}

function readSiteConfig(file: string | undefined, problems: string[]): SiteConfig {
  if (!file) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`cannot read site config ${file}: ${(err as Error).message}`);
    return {};
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    problems.push(`site config ${file} is not valid JSON: ${(err as Error).message}`);
    return {};
  }
  const parsed = SiteConfig.safeParse(json);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`site config ${file}: ${issue.path.join('.')}: ${issue.message}`);
    return {};
  }
  return parsed.data;
}

/**
 * The coordinator's settings in the environment, sorted by name, as `sandfleet install systemd`
 * keeps them: DATABASE_URL and every SANDFLEET_* variable that is set, except SANDFLEET_URL (it
 * only points client commands at a coordinator).
 */
export function serviceSettings(env: NodeJS.ProcessEnv = process.env): Array<[string, string]> {
  return Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '' && (e[0] === 'DATABASE_URL' || (e[0].startsWith('SANDFLEET_') && e[0] !== 'SANDFLEET_URL')))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
