import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { z } from 'zod';
import {
  DockerAuthConfig,
  MAX_DEQUEUE_WAIT_SECONDS,
  QUEUE_NAME_RULE,
  SandfleetError,
  parseDuration,
  parseSize,
  isWellFormedQueueName,
  type ParseResult,
} from '@sandfleet/protocol';
import { NETWORK_POLICIES, type NetworkPolicy } from './network/policy.js';
import { OCI_BINARIES, RUNTIME_NAMES, type HostEnvironment, type JobLimits, type RuntimeConfig, type RuntimeName } from './sandbox/runtime.js';
import { mirrorUrl } from './image/mirrors.js';

/**
 * The executor's configuration, parsed once from the environment (Sourcegraph's executor variables
 * plus Sandfleet's own) and frozen. Every duration is in milliseconds and every size in bytes, as the names say.
 */
export interface ExecutorConfig {
  /** EXECUTOR_FRONTEND_URL without a trailing slash, e.g. `https://sourcegraph.example.com`. */
  readonly frontendUrl: string;
  /** EXECUTOR_FRONTEND_PASSWORD: the shared `executors.accessToken`. */
  readonly frontendPassword: string;
  /** The queues to serve: one from EXECUTOR_QUEUE_NAME, or the list from EXECUTOR_QUEUE_NAMES. */
  readonly queueNames: readonly string[];
  /** True when EXECUTOR_QUEUE_NAMES was used: the multi-queue endpoints and `<id>-<queue>` IDs apply. */
  readonly multiQueue: boolean;
  /** EXECUTOR_QUEUE_POLL_INTERVAL; wait after an empty dequeue. @default 1000 */
  readonly pollIntervalMs: number;
  /** EXECUTOR_MAXIMUM_NUM_JOBS; jobs run at once. @default 1 */
  readonly maximumNumJobs: number;
  /** EXECUTOR_MAXIMUM_RUNTIME_PER_JOB; a job running longer is stopped and errored. @default 1_800_000 (30m) */
  readonly maximumRuntimePerJobMs: number;
  /** EXECUTOR_NUM_TOTAL_JOBS; drain after this many dequeues, 0 = never. @default 0 */
  readonly numTotalJobs: number;
  /** EXECUTOR_MAX_ACTIVE_TIME; drain after this long, 0 = never. @default 0 */
  readonly maxActiveTimeMs: number;
  /** EXECUTOR_HEARTBEAT_INTERVAL (Sandfleet); Sourcegraph's executor uses a fixed 5s. @default 5000 */
  readonly heartbeatIntervalMs: number;
  /** EXECUTOR_CLEANUP_TASK_INTERVAL; how often leftovers of dead executors (VMs) are removed. @default 60_000 */
  readonly cleanupTaskIntervalMs: number;
  /** EXECUTOR_ALLOW_HOST_CLI_STEPS; run src-cli steps (cliSteps) on the host, shell runtime only. @default false */
  readonly allowHostCliSteps: boolean;
  /** EXECUTOR_KEEP_WORKSPACES; leave job workspaces on disk for debugging. @default false */
  readonly keepWorkspaces: boolean;
  /** EXECUTOR_JOB_NUM_CPUS (fallback EXECUTOR_FIRECRACKER_NUM_CPUS); 0 = unbounded. @default 4 */
  readonly jobNumCpus: number;
  /** EXECUTOR_JOB_MEMORY as written (sent to the instance as `memory`). @default "12G" */
  readonly jobMemory: string;
  readonly jobMemoryBytes: number;
  /** EXECUTOR_FIRECRACKER_DISK_SPACE as written (sent as `diskSpace`); our per-job disk limit. @default "20G" */
  readonly diskSpace: string;
  readonly diskSpaceBytes: number;
  /** EXECUTOR_JOB_PIDS (Sandfleet); processes per job, 0 = unbounded. @default 1024 */
  readonly jobPids: number;
  /** EXECUTOR_MAX_LOG_BYTES (Sandfleet); log output one job may store, the rest is dropped with a marker line. @default 100 MiB */
  readonly maxLogBytes: number;
  /** EXECUTOR_STATE_DIR (Sandfleet); image cache and runtime state. @default "/var/lib/sandfleet/executor" */
  readonly stateDir: string;
  /** EXECUTOR_WORKSPACE_DIR (Sandfleet); parent of the per-job workspaces. @default os.tmpdir() */
  readonly workspaceDir: string;
  /**
   * EXECUTOR_LONG_POLL (Sandfleet): `true` (20 s), `false`, or a number of seconds (at most 30). How long
   * a coordinator that offers the long-poll extension may hold a dequeue open; 0 = plain polling.
   */
  readonly longPollWaitSeconds: number;
  /** EXECUTOR_NAME, or `<hostname>-<uuid v4>` (new on each start). */
  readonly executorName: string;
  /** SRC_LOG_LEVEL (Sourcegraph's names: dbug, info, warn, eror, crit) or pino's level names. @default "info" */
  readonly logLevel: string;
  /** What the runtimes read: EXECUTOR_RUNTIME, EXECUTOR_NETWORK, limits, mirrors, auth, state dir. */
  readonly runtimeConfig: RuntimeConfig;
  /** PATH, HOME and DOCKER_HOST of the executor's own environment, for the commands it starts. */
  readonly host: HostEnvironment;
}

/** All problems found in the environment, reported together. */
export class ConfigError extends SandfleetError {
  constructor(readonly problems: readonly string[]) {
    super(`invalid executor configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export const DEFAULT_STATE_DIR = '/var/lib/sandfleet/executor';
/** PATH for the commands the executor starts when its own environment has none. */
export const DEFAULT_HOST_PATH = '/usr/local/bin:/usr/bin:/bin';
export const DEFAULT_LONG_POLL_SECONDS = 20;

export interface LoadConfigOptions {
  hostname?: () => string;
  randomUUID?: () => string;
  tmpdir?: () => string;
}

// Sourcegraph's level names, and pino's, to pino's.
const LOG_LEVELS: Record<string, string> = {
  dbug: 'debug', info: 'info', warn: 'warn', eror: 'error', crit: 'fatal',
  trace: 'trace', debug: 'debug', error: 'error', fatal: 'fatal', silent: 'silent',
};

export type Env = Readonly<Record<string, string | undefined>>;

// Go's strconv.ParseBool, which Sourcegraph's env helpers use.
const GO_TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const GO_FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

const goBool = z.string().transform((v, ctx) => {
  if (GO_TRUE.includes(v)) return true;
  if (GO_FALSE.includes(v)) return false;
  ctx.addIssue({ code: 'custom', message: 'not a boolean (use true or false)' });
  return z.NEVER;
});

const nonNegativeInt = z.string().transform((v, ctx) => {
  if (!/^\d+$/.test(v.trim())) {
    ctx.addIssue({ code: 'custom', message: 'not a non-negative integer' });
    return z.NEVER;
  }
  return Number(v.trim());
});

/** A string parsed by one of the shared unit grammars; its error becomes the issue. */
const unitValue = (parse: (text: string) => ParseResult<number>) =>
  z.string().transform((v, ctx) => {
    const result = parse(v);
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.error });
    return z.NEVER;
  });

const durationMs = unitValue(parseDuration);
const sizeBytes = unitValue(parseSize);

const runtimeName = z.enum(['auto', ...RUNTIME_NAMES], { error: `must be one of ${['auto', ...RUNTIME_NAMES].join(', ')}` });
/** Part of directory names and Firecracker VM ids (alphanumeric and hyphens). */
const vmPrefixName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/, 'use letters, digits and hyphens (at most 32, starting with a letter or digit)');
const ociRuntimeName = z.enum(['auto', ...OCI_BINARIES], { error: `must be auto, ${OCI_BINARIES.join(' or ')}` });
const networkPolicy = z.enum(NETWORK_POLICIES, { error: `must be ${NETWORK_POLICIES.join(' or ')}` });

const longPoll = z.string().transform((v, ctx) => {
  if (GO_TRUE.includes(v)) return DEFAULT_LONG_POLL_SECONDS;
  if (GO_FALSE.includes(v)) return 0;
  if (/^\d+$/.test(v) && Number(v) <= MAX_DEQUEUE_WAIT_SECONDS) return Number(v);
  ctx.addIssue({ code: 'custom', message: `use true, false, or a number of seconds from 0 to ${MAX_DEQUEUE_WAIT_SECONDS}` });
  return z.NEVER;
});

const dockerAuthJson = z.string().transform((v, ctx) => {
  let json: unknown;
  try {
    json = JSON.parse(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
  const parsed = DockerAuthConfig.safeParse(json);
  if (!parsed.success) {
    ctx.addIssue({ code: 'custom', message: parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ') });
    return z.NEVER;
  }
  return parsed.data;
});

/**
 * Reads and validates the executor's environment. Throws ConfigError listing every problem.
 *
 * ### Example
 * ```ts
 * const config = loadConfig(process.env);
 * config.pollIntervalMs; // 1000
 * ```
 */
export function loadConfig(env: Env, options: LoadConfigOptions = {}): ExecutorConfig {
  const problems: string[] = [];
  const raw = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  // Parses `name` (or its default) with `schema`; a failure becomes one line in `problems`.
  const read = <T>(name: string, schema: z.ZodType<T, string>, fallback: string, value = raw(name)): T | undefined => {
    const text = value ?? fallback;
    const result = schema.safeParse(text);
    if (result.success) return result.data;
    problems.push(`invalid value ${JSON.stringify(text)} for ${name}: ${result.error.issues.map((i) => i.message).join('; ')}`);
    return undefined;
  };

  const frontendUrl = parseFrontendUrl(raw('EXECUTOR_FRONTEND_URL'), problems);
  const frontendPassword = raw('EXECUTOR_FRONTEND_PASSWORD');
  if (frontendPassword === undefined) problems.push('invalid value "" for EXECUTOR_FRONTEND_PASSWORD: no value supplied');

  const { queueNames, multiQueue } = parseQueues(raw('EXECUTOR_QUEUE_NAME'), raw('EXECUTOR_QUEUE_NAMES'), problems);

  const pollIntervalMs = read('EXECUTOR_QUEUE_POLL_INTERVAL', durationMs, '1s');
  const maximumNumJobs = read('EXECUTOR_MAXIMUM_NUM_JOBS', nonNegativeInt, '1');
  if (maximumNumJobs === 0) problems.push('invalid value "0" for EXECUTOR_MAXIMUM_NUM_JOBS: must be at least 1');
  const maximumRuntimePerJobMs = read('EXECUTOR_MAXIMUM_RUNTIME_PER_JOB', durationMs, '30m');
  if (maximumRuntimePerJobMs === 0) problems.push('invalid value "0" for EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: must be greater than 0');
  const numTotalJobs = read('EXECUTOR_NUM_TOTAL_JOBS', nonNegativeInt, '0');
  const maxActiveTimeMs = read('EXECUTOR_MAX_ACTIVE_TIME', durationMs, '0');
  const heartbeatIntervalMs = read('EXECUTOR_HEARTBEAT_INTERVAL', durationMs, '5s');
  if (heartbeatIntervalMs === 0) problems.push('invalid value "0" for EXECUTOR_HEARTBEAT_INTERVAL: must be greater than 0');
  const cleanupTaskIntervalMs = read('EXECUTOR_CLEANUP_TASK_INTERVAL', durationMs, '1m');
  if (cleanupTaskIntervalMs === 0) problems.push('invalid value "0" for EXECUTOR_CLEANUP_TASK_INTERVAL: must be greater than 0');
  const keepWorkspaces = read('EXECUTOR_KEEP_WORKSPACES', goBool, 'false');
  const allowHostCliSteps = read('EXECUTOR_ALLOW_HOST_CLI_STEPS', goBool, 'false');

  const cpusName = raw('EXECUTOR_JOB_NUM_CPUS') === undefined && raw('EXECUTOR_FIRECRACKER_NUM_CPUS') !== undefined
    ? 'EXECUTOR_FIRECRACKER_NUM_CPUS'
    : 'EXECUTOR_JOB_NUM_CPUS';
  const jobNumCpus = read(cpusName, nonNegativeInt, '4');
  const memoryName = raw('EXECUTOR_JOB_MEMORY') === undefined && raw('EXECUTOR_FIRECRACKER_MEMORY') !== undefined
    ? 'EXECUTOR_FIRECRACKER_MEMORY'
    : 'EXECUTOR_JOB_MEMORY';
  const jobMemory = raw(memoryName) ?? '12G';
  const jobMemoryBytes = read(memoryName, sizeBytes, '12G');
  const diskSpace = raw('EXECUTOR_FIRECRACKER_DISK_SPACE') ?? '20G';
  const diskSpaceBytes = sizeBytes.safeParse(diskSpace).data;
  if (diskSpaceBytes === undefined) problems.push(`invalid disk size provided for EXECUTOR_FIRECRACKER_DISK_SPACE: ${JSON.stringify(diskSpace)}`);
  const jobPids = read('EXECUTOR_JOB_PIDS', nonNegativeInt, '1024');
  const maxLogBytes = read('EXECUTOR_MAX_LOG_BYTES', sizeBytes, '100M');

  const explicitRuntime = read('EXECUTOR_RUNTIME', runtimeName, 'auto');
  const useFirecracker = read('EXECUTOR_USE_FIRECRACKER', goBool, 'false');
  // EXECUTOR_USE_FIRECRACKER=true is Sourcegraph's switch; an explicit EXECUTOR_RUNTIME overrides it.
  const runtime: RuntimeName | 'auto' | undefined =
    raw('EXECUTOR_RUNTIME') === undefined && useFirecracker ? 'firecracker' : explicitRuntime;
  if (runtime === 'firecracker' && jobNumCpus !== undefined && jobNumCpus !== 1 && jobNumCpus % 2 !== 0) {
    problems.push('EXECUTOR_JOB_NUM_CPUS must be 1 or an even number');
  }
  const network = read('EXECUTOR_NETWORK', networkPolicy, 'public');
  const ociRuntime = read('EXECUTOR_OCI_RUNTIME', ociRuntimeName, 'auto');
  const firecrackerBin = raw('EXECUTOR_FIRECRACKER_BIN');
  const jailerBin = raw('EXECUTOR_FIRECRACKER_JAILER_BIN');
  const useJailer = read('EXECUTOR_FIRECRACKER_USE_JAILER', goBool, 'true');
  const vmWarmStart = read('EXECUTOR_VM_WARM_START', goBool, 'true');
  const vmPrefix = read('EXECUTOR_VM_PREFIX', vmPrefixName, 'executor');
  const jailerUid = read('EXECUTOR_FIRECRACKER_JAILER_UID', nonNegativeInt, '65534');
  const jailerGid = read('EXECUTOR_FIRECRACKER_JAILER_GID', nonNegativeInt, '65534');
  const registryMirrorUrls = (raw('EXECUTOR_DOCKER_REGISTRY_MIRROR_URL') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const mirror of registryMirrorUrls) {
    if (!isHttpUrl(mirrorUrl(mirror))) problems.push(`invalid value ${JSON.stringify(mirror)} in EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: not an http(s) URL`);
  }
  const allowedPrivateRegistries = (raw('EXECUTOR_ALLOWED_PRIVATE_REGISTRIES') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const imageMaxBytes = raw('EXECUTOR_IMAGE_MAX_SIZE') === undefined ? undefined : read('EXECUTOR_IMAGE_MAX_SIZE', sizeBytes, '10G');
  const imageCacheBytes = raw('EXECUTOR_IMAGE_CACHE_SIZE') === undefined ? undefined : read('EXECUTOR_IMAGE_CACHE_SIZE', sizeBytes, '20G');
  const authText = raw('EXECUTOR_DOCKER_AUTH_CONFIG');
  let dockerAuthConfig: DockerAuthConfig | undefined;
  if (authText !== undefined) {
    const parsed = dockerAuthJson.safeParse(authText);
    if (parsed.success) dockerAuthConfig = parsed.data;
    else problems.push(`invalid EXECUTOR_DOCKER_AUTH_CONFIG, failed to parse: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }

  const stateDir = raw('EXECUTOR_STATE_DIR') ?? DEFAULT_STATE_DIR;
  const workspaceDir = raw('EXECUTOR_WORKSPACE_DIR') ?? (options.tmpdir ?? os.tmpdir)();
  for (const [name, dir] of [['EXECUTOR_STATE_DIR', stateDir], ['EXECUTOR_WORKSPACE_DIR', workspaceDir]] as const) {
    if (!dir.startsWith('/')) problems.push(`invalid value ${JSON.stringify(dir)} for ${name}: must be an absolute path`);
  }
  const longPollWaitSeconds = read('EXECUTOR_LONG_POLL', longPoll, 'true');
  const executorName =
    raw('EXECUTOR_NAME') ?? `${(options.hostname ?? os.hostname)()}-${(options.randomUUID ?? randomUUID)()}`;

  const logLevelText = raw('SRC_LOG_LEVEL') ?? 'info';
  const logLevel = LOG_LEVELS[logLevelText.toLowerCase()];
  if (logLevel === undefined) {
    problems.push(`invalid value ${JSON.stringify(logLevelText)} for SRC_LOG_LEVEL: use one of dbug, info, warn, eror, crit`);
  }

  if (problems.length > 0) throw new ConfigError(problems);

  // Every `undefined` above pushed a problem, so past this point the values are set.
  const limits: JobLimits = Object.freeze({
    cpus: jobNumCpus!,
    memoryBytes: jobMemoryBytes!,
    pids: jobPids!,
    diskBytes: diskSpaceBytes!,
  });
  const runtimeConfig: RuntimeConfig = Object.freeze({
    runtime: runtime!,
    stateDir,
    registryMirrorUrls: Object.freeze([...registryMirrorUrls]) as string[],
    dockerAuthConfig,
    // Only when set: the image store owns the defaults (10G per image, 20G of cache).
    ...(allowedPrivateRegistries.length || imageMaxBytes !== undefined || imageCacheBytes !== undefined
      ? { imageStore: Object.freeze({ allowedPrivateRegistries, maxImageBytes: imageMaxBytes, cacheBytes: imageCacheBytes }) }
      : {}),
    network: network! as NetworkPolicy,
    ...(ociRuntime !== undefined && ociRuntime !== 'auto' ? { ociBinary: ociRuntime } : {}),
    limits,
    maxJobRuntimeMs: maximumRuntimePerJobMs!,
    vmWarmStart: vmWarmStart!,
    vmPrefix: vmPrefix!,
    firecracker: Object.freeze({ bin: firecrackerBin, jailerBin, useJailer: useJailer!, jailerUid: jailerUid!, jailerGid: jailerGid! }),
  });
  return Object.freeze({
    frontendUrl: frontendUrl!,
    frontendPassword: frontendPassword!,
    queueNames: Object.freeze(queueNames),
    multiQueue,
    pollIntervalMs: pollIntervalMs!,
    maximumNumJobs: maximumNumJobs!,
    maximumRuntimePerJobMs: maximumRuntimePerJobMs!,
    numTotalJobs: numTotalJobs!,
    maxActiveTimeMs: maxActiveTimeMs!,
    heartbeatIntervalMs: heartbeatIntervalMs!,
    cleanupTaskIntervalMs: cleanupTaskIntervalMs!,
    keepWorkspaces: keepWorkspaces!,
    allowHostCliSteps: allowHostCliSteps!,
    jobNumCpus: jobNumCpus!,
    jobMemory,
    jobMemoryBytes: jobMemoryBytes!,
    diskSpace,
    diskSpaceBytes: diskSpaceBytes!,
    jobPids: jobPids!,
    maxLogBytes: maxLogBytes!,
    stateDir,
    workspaceDir,
    longPollWaitSeconds: longPollWaitSeconds!,
    executorName,
    logLevel: logLevel!,
    runtimeConfig,
    host: hostEnvironment(env),
  });
}

/** The parts of the executor's own environment that the commands it starts inherit. */
export function hostEnvironment(env: Env): HostEnvironment {
  return Object.freeze({
    path: env.PATH || DEFAULT_HOST_PATH,
    home: env.HOME || undefined,
    dockerHost: env.DOCKER_HOST || undefined,
    // The node test runner sets NODE_TEST_CONTEXT; under it nothing may touch the host's network.
    underTestRunner: env.NODE_TEST_CONTEXT !== undefined,
  });
}

/**
 * The settings in `env` that make up an executor's configuration, sorted by name: every
 * `EXECUTOR_*` variable that is set, SRC_LOG_LEVEL and DOCKER_HOST (what executor.env keeps).
 */
export function executorSettings(env: Env): Array<[string, string]> {
  return Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '' && (e[0].startsWith('EXECUTOR_') || e[0] === 'SRC_LOG_LEVEL' || e[0] === 'DOCKER_HOST'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `executor install`'s defaults: the state directory and Docker daemon the executor would use. */
export function installDefaults(env: Env): { stateDir: string; dockerHost: string | undefined } {
  return { stateDir: env.EXECUTOR_STATE_DIR || DEFAULT_STATE_DIR, dockerHost: env.DOCKER_HOST || undefined };
}

function parseFrontendUrl(value: string | undefined, problems: string[]): string | undefined {
  if (value === undefined) {
    problems.push('invalid value "" for EXECUTOR_FRONTEND_URL: no value supplied');
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    url = undefined as never;
  }
  // `new URL('localhost:3080')` parses with scheme "localhost:" and no host, hence the host check.
  if (!url || !url.host || !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    problems.push('EXECUTOR_FRONTEND_URL must be in the format scheme://host (and optionally :port)');
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push(`invalid value ${JSON.stringify(value)} for EXECUTOR_FRONTEND_URL: the scheme must be http or https`);
    return undefined;
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function parseQueues(
  queueName: string | undefined,
  queueNamesText: string | undefined,
  problems: string[],
): { queueNames: string[]; multiQueue: boolean } {
  // The same checks and order as Sourcegraph's config validation. Any well-formed name is taken:
  // the coordinator decides which queues exist and answers an unknown one with Sourcegraph's error.
  if (queueName === undefined && queueNamesText === undefined) {
    problems.push('neither EXECUTOR_QUEUE_NAME or EXECUTOR_QUEUE_NAMES is set');
    return { queueNames: [], multiQueue: false };
  }
  if (queueName !== undefined && queueNamesText !== undefined) {
    problems.push('both EXECUTOR_QUEUE_NAME and EXECUTOR_QUEUE_NAMES are set');
    return { queueNames: [], multiQueue: false };
  }
  if (queueName !== undefined) {
    if (!isWellFormedQueueName(queueName)) problems.push(`EXECUTOR_QUEUE_NAME '${queueName}' is not a queue name: use ${QUEUE_NAME_RULE}, e.g. 'batches'`);
    return { queueNames: [queueName], multiQueue: false };
  }
  const names = queueNamesText!.split(',').map((s) => s.trim());
  for (const name of names.filter((n) => !isWellFormedQueueName(n))) {
    problems.push(`EXECUTOR_QUEUE_NAMES contains invalid queue name '${name}', valid names are ${QUEUE_NAME_RULE} and should be comma-separated`);
  }
  return { queueNames: [...new Set(names)], multiQueue: true };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
