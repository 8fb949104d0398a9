import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CoordinatorClient, ExecutorJob } from '../apiclient/client.js';
import type { ExecutorConfig } from '../config.js';
import { LogFlushError } from '../logs/log-stream.js';
import { openStepLog, runHostCommand, type JobLogContext } from '../logs/logged-command.js';
import { buildRedactions, Redactor } from '../logs/redaction.js';
import type { Runtime, Sandbox } from '../sandbox/runtime.js';
import { cloneRepository, createWorkspace, writeJobFiles, type Workspace } from '../workspace/workspace.js';
import { resolveInside } from '../workspace/files.js';

/**
 * Runs one job from workspace to teardown and says how it ended. It never throws for anything the
 * job did; the agent turns the outcome into markComplete / markErrored / markFailed.
 */

/** Why a running job was stopped (DESIGN §5). */
export type CancelReason = 'user' | 'lost' | 'timeout' | 'shutdown';

/** The abort reason put on a job's AbortSignal. */
export class JobCanceledError extends Error {
  constructor(readonly reason: CancelReason, message: string) {
    super(message);
    this.name = 'JobCanceledError';
  }
}

export type JobOutcome =
  | { status: 'completed' }
  /** Retryable: the instance may hand the job out again (markErrored). */
  | { status: 'errored'; message: string }
  /** Permanent (markFailed). */
  | { status: 'failed'; message: string }
  | { status: 'canceled'; reason: CancelReason; message: string };

export interface JobRunnerDeps {
  config: Pick<ExecutorConfig, 'frontendUrl' | 'frontendPassword' | 'workspaceDir' | 'keepWorkspaces' | 'runtimeConfig' | 'maxLogBytes'>;
  client: Pick<CoordinatorClient, 'addExecutionLogEntry' | 'updateExecutionLogEntry' | 'appendExecutionLog' | 'supports' | 'getFile' | 'jobHeaders'>;
  runtime: Runtime;
  log: Logger;
  /** Time between log uploads, in ms. @default 1000 */
  logFlushIntervalMs?: number;
  /** PATH used to find `src` for cliSteps. @default process.env.PATH */
  hostPath?: string;
}

/** A step failed: a non-zero exit, or the sandbox could not run it. */
class StepFailedError extends Error {
  constructor(readonly key: string, readonly exitCode: number, detail?: string) {
    super(`failed ${key}: exit code ${exitCode}${detail ? ` (${detail})` : ''}`);
    this.name = 'StepFailedError';
  }
}

/** The job cannot run on this executor at all. */
class JobUnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobUnsupportedError';
  }
}

export async function runJob(job: ExecutorJob, deps: JobRunnerDeps, signal: AbortSignal): Promise<JobOutcome> {
  const log = deps.log;
  const redactor = new Redactor(buildRedactions(deps.config.frontendPassword, job.redactedValues, [job.token]));
  const ctx: JobLogContext = { client: deps.client, job, redactor, log, flushIntervalMs: deps.logFlushIntervalMs, maxLogBytes: deps.config.maxLogBytes };
  let workspace: Workspace | undefined;
  let sandbox: Sandbox | undefined;
  try {
    if ((job.cliSteps ?? []).length > 0 && !(await findOnPath('src', deps.hostPath ?? process.env.PATH ?? ''))) {
      throw new JobUnsupportedError('this job has src-cli steps (cliSteps) but src-cli ("src") is not installed on this executor host');
    }
    workspace = await createWorkspace(deps.config.workspaceDir, job.id);
    log.debug({ workspace: workspace.dir }, 'workspace created');
    if (job.repositoryName) {
      await cloneRepository(ctx, job, {
        workspaceDir: workspace.dir,
        frontendUrl: deps.config.frontendUrl,
        jobHeaders: deps.client.jobHeaders(job),
      }, signal);
    }
    const wsDir = workspace.dir;
    const scripts = await writeJobFiles(ctx, job, {
      workspaceDir: wsDir,
      getFile: (bucket, key, s) => deps.client.getFile(job, bucket, key, s),
    }, signal);
    throwIfAborted(signal);

    sandbox = await prepareSandbox(ctx, job, deps, wsDir, signal);
    for (const [i, step] of (job.dockerSteps ?? []).entries()) {
      throwIfAborted(signal);
      const key = `step.docker.${step.key || i}`;
      const scriptPath = scripts[i]!;
      const entry = openStepLog(ctx, key, ['/bin/sh', scriptPath]);
      let exitCode: number;
      let failure: string | undefined;
      try {
        resolveInside(wsDir, step.dir, true); // a step's dir must not leave the workspace either
        const result = await sandbox.run(
          { key, image: step.image, scriptPath, dir: step.dir, env: step.env ?? [] },
          { onStdout: entry.onStdout, onStderr: entry.onStderr, progress: (line) => entry.writeLine(line), signal },
        );
        log.debug({ key, command: result.command.map((a) => redactor.redactString(a)), exitCode: result.exitCode }, 'step finished');
        exitCode = result.exitCode;
        failure = result.failure;
      } catch (err) {
        exitCode = 1;
        failure = err instanceof Error ? err.message : String(err);
      }
      if (failure) entry.writeLine(failure);
      await entry.finish(exitCode);
      throwIfAborted(signal);
      if (exitCode !== 0) throw new StepFailedError(key, exitCode, failure);
    }

    for (const [i, step] of (job.cliSteps ?? []).entries()) {
      throwIfAborted(signal);
      const key = `step.src.${step.key || i}`;
      const cwd = resolveInside(wsDir, step.dir, true);
      const result = await runHostCommand(ctx, { key, argv: ['src', ...step.command], cwd, env: stepEnv(step.env ?? [], deps.hostPath) }, signal);
      throwIfAborted(signal);
      if (result.exitCode !== 0) throw new StepFailedError(key, result.exitCode);
    }
    return { status: 'completed' };
  } catch (err) {
    return outcomeOf(err, signal);
  } finally {
    if (sandbox) await sandbox.teardown().catch((err: unknown) => log.warn({ err }, 'sandbox teardown failed'));
    if (workspace && !deps.config.keepWorkspaces) {
      await workspace.remove().catch((err: unknown) => log.warn({ err, workspace: workspace?.dir }, 'could not remove workspace'));
    } else if (workspace) {
      log.info({ workspace: workspace.dir }, 'keeping workspace (EXECUTOR_KEEP_WORKSPACES)');
    }
  }
}

async function prepareSandbox(ctx: JobLogContext, job: ExecutorJob, deps: JobRunnerDeps, workspaceDir: string, signal: AbortSignal): Promise<Sandbox> {
  const { runtime, config } = deps;
  const options = {
    // Unique per attempt, short enough for cgroup, netns and interface names.
    jobId: `${job.id}-${randomBytes(4).toString('hex')}`,
    workspaceDir,
    limits: config.runtimeConfig.limits,
    network: config.runtimeConfig.network,
    dockerAuth: job.dockerAuthConfig?.auths && Object.keys(job.dockerAuthConfig.auths).length > 0
      ? job.dockerAuthConfig
      : config.runtimeConfig.dockerAuthConfig,
    progress: (_line: string) => {},
    signal,
  };
  // The unisolated shell runtime has nothing to prepare and gets no entry of its own.
  if (!runtime.isolating) return runtime.prepare(options);
  const entry = openStepLog(ctx, `setup.${runtime.name}.start`, []);
  options.progress = (line) => entry.writeLine(line);
  try {
    const sandbox = await runtime.prepare(options);
    await entry.finish(0);
    return sandbox;
  } catch (err) {
    entry.writeLine(err instanceof Error ? err.message : String(err));
    await entry.finish(1).catch(() => {});
    throw err;
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}

function outcomeOf(err: unknown, signal: AbortSignal): JobOutcome {
  if (signal.aborted) {
    const reason = signal.reason;
    if (reason instanceof JobCanceledError) return { status: 'canceled', reason: reason.reason, message: reason.message };
    return { status: 'canceled', reason: 'shutdown', message: String(reason) };
  }
  if (err instanceof JobUnsupportedError) return { status: 'failed', message: err.message };
  if (err instanceof LogFlushError) return { status: 'errored', message: err.message };
  return { status: 'errored', message: err instanceof Error ? err.message : String(err) };
}

/** `NAME=value` pairs plus PATH and HOME of the host (as Sourcegraph passes to src-cli). */
function stepEnv(pairs: readonly string[], hostPath: string | undefined): Record<string, string> {
  const env: Record<string, string> = { PATH: hostPath ?? process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  if (process.env.HOME) env.HOME = process.env.HOME;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** Whether an executable named `name` is on `searchPath`. */
export async function findOnPath(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    try {
      await fs.access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next directory
    }
  }
  return undefined;
}
