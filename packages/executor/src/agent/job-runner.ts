import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { SandfleetError } from '@sandfleet/protocol';
import type { CoordinatorClient, ExecutorJob } from '../apiclient/client.js';
import type { ExecutorConfig } from '../config.js';
import { jobRegistryAuth } from '../image/auth.js';
import { openStepLog, runHostCommand, type JobLogContext } from '../logs/logged-command.js';
import { buildRedactions, Redactor } from '../logs/redaction.js';
import type { HostEnvironment, Runtime, Sandbox, SandboxOptions } from '../sandbox/runtime.js';
import { resolveInside } from '../workspace/files.js';
import { prepareWorkspaceOnHost, type WorkspaceRequest } from '../workspace/prepare.js';
import { createWorkspace, type Workspace } from '../workspace/workspace.js';
import { JobUnsupportedError, outcomeOf, type JobOutcome } from './outcome.js';

/**
 * Runs one job from sandbox to teardown and says how it ended. It never throws for anything the
 * job did; the agent turns the outcome into markComplete / markErrored / markFailed.
 *
 * Order: an empty workspace directory, the sandbox (job disk, cgroup, network), then the workspace
 * built straight into the sandbox — by the sandbox itself when it can (prepareWorkspace), else on
 * the host (clone through the git proxy, files, step scripts) — then the steps.
 */

export interface JobRunnerDeps {
  config: Pick<ExecutorConfig, 'frontendUrl' | 'frontendPassword' | 'workspaceDir' | 'keepWorkspaces' | 'runtimeConfig' | 'host' | 'maxLogBytes'> & Partial<Pick<ExecutorConfig, 'allowHostCliSteps'>>;
  client: Pick<CoordinatorClient, 'addExecutionLogEntry' | 'updateExecutionLogEntry' | 'appendEncodedExecutionLog' | 'supports' | 'getFile' | 'jobHeaders'>;
  runtime: Runtime;
  log: Logger;
  /** Time between log uploads, in ms. @default 1000 */
  logFlushIntervalMs?: number;
  /** PATH used to find and run `src` for cliSteps. @default config.host.path */
  hostPath?: string;
}

/** A step failed: a non-zero exit, or the sandbox could not run it. */
class StepFailedError extends SandfleetError {
  constructor(readonly key: string, readonly exitCode: number, detail?: string) {
    super(`failed ${key}: exit code ${exitCode}${detail ? ` (${detail})` : ''}`);
  }
}

export async function runJob(job: ExecutorJob, deps: JobRunnerDeps, signal: AbortSignal): Promise<JobOutcome> {
  const log = deps.log;
  const redactor = new Redactor(buildRedactions(deps.config.frontendPassword, job.redactedValues, [job.token]));
  const ctx: JobLogContext = { client: deps.client, job, redactor, log, flushIntervalMs: deps.logFlushIntervalMs, maxLogBytes: deps.config.maxLogBytes };
  let workspace: Workspace | undefined;
  let sandbox: Sandbox | undefined;
  const host: HostEnvironment = { ...deps.config.host, ...(deps.hostPath === undefined ? {} : { path: deps.hostPath }) };
  try {
    const srcCli = (job.cliSteps ?? []).length > 0 ? await hostSrcCli(deps, host) : undefined;
    workspace = await createWorkspace(deps.config.workspaceDir, job.id);
    log.debug({ workspace: workspace.dir }, 'workspace created');
    sandbox = await prepareSandbox(ctx, job, deps, workspace.dir, signal);
    const wsDir = sandbox.workspaceDir;
    const request: WorkspaceRequest = {
      ctx,
      job,
      frontendUrl: deps.config.frontendUrl,
      jobHeaders: deps.client.jobHeaders(job),
      getFile: (bucket, key, s) => deps.client.getFile(job, bucket, key, s),
      host,
    };
    const scripts = sandbox.prepareWorkspace
      ? await sandbox.prepareWorkspace(request, signal)
      : await prepareWorkspaceOnHost(wsDir, request, signal);
    throwIfAborted(signal);

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
      const result = await runHostCommand(ctx, { key, argv: [srcCli!, ...step.command], cwd, env: stepEnv(step.env ?? [], host) }, signal);
      throwIfAborted(signal);
      if (result.exitCode !== 0) throw new StepFailedError(key, result.exitCode);
    }
    return { status: 'completed' };
  } catch (err) {
    return redactOutcome(outcomeOf(err, signal), redactor);
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
  const options: SandboxOptions = {
    // Unique per attempt, short enough for cgroup, netns and interface names.
    jobId: `${job.id}-${randomBytes(4).toString('hex')}`,
    workspaceDir,
    dockerAuth: jobRegistryAuth(job.dockerAuthConfig, config.runtimeConfig.dockerAuthConfig),
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

/**
 * src-cli steps run on the host, outside any sandbox: only with the shell runtime (which runs
 * everything there anyway) and only when the operator opted in. Returns the absolute path of `src`.
 */
async function hostSrcCli(deps: JobRunnerDeps, host: HostEnvironment): Promise<string> {
  if (deps.runtime.isolating || !deps.config.allowHostCliSteps) {
    throw new JobUnsupportedError(
      `this job has src-cli steps (cliSteps), which run on the executor host outside the sandbox: refused with the ${deps.runtime.name} runtime` +
        (deps.runtime.isolating ? '' : ' unless EXECUTOR_ALLOW_HOST_CLI_STEPS=true'),
    );
  }
  const src = await findOnPath('src', host.path);
  if (!src) throw new JobUnsupportedError('this job has src-cli steps (cliSteps) but src-cli ("src") is not installed on this executor host');
  return src;
}

/** Outcome messages can quote commands and errors: they get the job's redaction like its logs. */
function redactOutcome(outcome: JobOutcome, redactor: Redactor): JobOutcome {
  return 'message' in outcome ? { ...outcome, message: redactor.redactString(outcome.message) } : outcome;
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}

/**
 * `NAME=value` pairs plus PATH and HOME of the host (as Sourcegraph passes to src-cli). The job
 * cannot choose how the host finds programs or loads libraries: PATH, HOME and the dynamic
 * loader's variables are the host's.
 */
function stepEnv(pairs: readonly string[], host: HostEnvironment): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    if (eq > 0 && !HOST_ONLY_ENV.test(name)) env[name] = pair.slice(eq + 1);
  }
  env.PATH = host.path;
  if (host.home) env.HOME = host.home;
  return env;
}

const HOST_ONLY_ENV = /^(PATH|HOME|LD_\w*|GCONV_PATH|NODE_OPTIONS)$/;

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
