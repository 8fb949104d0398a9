import type { Logger } from 'pino';
import { runProcess, SpawnError } from '../process/run.js';
import type { JobRef } from '../apiclient/client.js';
import { LogBudget } from './log-budget.js';
import { StepLog, type LogClient } from './log-stream.js';
import type { Redactor } from './redaction.js';

/** What every log entry of one job shares. */
export interface JobLogContext {
  client: LogClient;
  job: JobRef;
  redactor: Redactor;
  log?: Logger | undefined;
  /** Time between uploads of new output, in ms. @default 1000 */
  flushIntervalMs?: number | undefined;
  /** EXECUTOR_MAX_LOG_BYTES: log bytes the whole job may store. @default DEFAULT_MAX_LOG_BYTES */
  maxLogBytes?: number | undefined;
}

/** One budget per job: the context object is created once per job and shared by all its entries. */
const budgets = new WeakMap<JobLogContext, LogBudget>();

function budgetOf(ctx: JobLogContext): LogBudget {
  let budget = budgets.get(ctx);
  if (!budget) {
    budget = new LogBudget(ctx.maxLogBytes);
    budgets.set(ctx, budget);
  }
  return budget;
}

/** Opens a log entry for `key` in this job's context. */
export function openStepLog(ctx: JobLogContext, key: string, command: readonly string[]): StepLog {
  return new StepLog({
    client: ctx.client,
    job: ctx.job,
    key,
    command,
    redactor: ctx.redactor,
    log: ctx.log,
    budget: budgetOf(ctx),
    ...(ctx.flushIntervalMs === undefined ? {} : { flushIntervalMs: ctx.flushIntervalMs }),
  }).start();
}

export interface HostCommand {
  key: string;
  argv: readonly string[];
  cwd: string;
  /** The complete environment of the command. */
  env: Record<string, string>;
}

export interface HostCommandResult {
  exitCode: number;
  aborted: boolean;
}

/**
 * Runs a command on the host (git during workspace setup, src-cli steps) as one log entry. A binary
 * that cannot be started is exit code 127 with the reason in the entry. Throws LogFlushError when the
 * entry could not be uploaded.
 */
export async function runHostCommand(ctx: JobLogContext, command: HostCommand, signal: AbortSignal): Promise<HostCommandResult> {
  const entry = openStepLog(ctx, command.key, command.argv);
  let result: HostCommandResult;
  try {
    const run = await runProcess({
      argv: command.argv,
      cwd: command.cwd,
      env: command.env,
      signal,
      onStdout: entry.onStdout,
      onStderr: entry.onStderr,
    });
    result = { exitCode: run.exitCode, aborted: run.aborted };
  } catch (err) {
    // 127 is what a shell reports for a command it cannot run.
    entry.writeLine(err instanceof Error ? err.message : String(err));
    result = { exitCode: err instanceof SpawnError ? 127 : 1, aborted: signal.aborted };
  }
  await entry.finish(result.exitCode);
  return result;
}
