/** Public surface of @sandfleet/executor for tests and other packages. */
export { Agent, IllegalStateError, type AgentOptions, type AgentState } from './agent/agent.js';
export { buildProgram, main, EXIT_FAILURE, EXIT_OK } from './cli/main.js';
export { ConfigError, loadConfig, DEFAULT_LONG_POLL_SECONDS, DEFAULT_STATE_DIR, type ExecutorConfig, type LoadConfigOptions } from './config.js';
export {
  CoordinatorClient,
  CoordinatorUnreachableError,
  InvalidResponseError,
  JobFencedError,
  LONG_POLL_GRACE_SECONDS,
  connectionOptions,
  UnexpectedStatusError,
  type CoordinatorClientOptions,
  type ExecutorJob,
  type HeartbeatResult,
  type HeartbeatTelemetry,
  type JobRef,
} from './apiclient/client.js';
export { GIT_PROXY_SECRET_HEADER, startGitProxy, type GitProxy, type GitProxyOptions } from './workspace/git-proxy.js';
export { gitVersionOutput, isGitVersionSupported, MIN_GIT_VERSION, parseGitVersion } from './cli/host-tools.js';
export { runJob, findOnPath, type JobRunnerDeps } from './agent/job-runner.js';
export { JobCanceledError, JobUnsupportedError, outcomeOf, reportOutcome, type CancelReason, type JobOutcome } from './agent/outcome.js';
export { LinePrefixer, LogFlushError, LOG_FLUSH_INTERVAL_MS, StepLog, type LogClient, type StepLogOptions } from './logs/log-stream.js';
export { openStepLog, runHostCommand, type HostCommand, type JobLogContext } from './logs/logged-command.js';
export { createLogger } from './logger.js';
export { buildRedactions, PASSWORD_REPLACEMENT, Redactor, StreamRedactor, type Redactions } from './logs/redaction.js';
export { buildStepScript, SCRIPTS_DIR, STEP_SCRIPT_PREAMBLE, stepScriptName, stepScriptPath } from './workspace/step-script.js';
export { formatDuration, parseDurationMs, parseSizeBytes } from '@sandfleet/protocol';
export { AUTH_FAILED_MESSAGE, runValidation, type ValidateIo } from './cli/validate.js';
export { EXECUTOR_VERSION } from './version.js';
export { createWorkspace, writeJobFiles, type Workspace } from './workspace/workspace.js';
export { assertObjectId, cloneRepository, gitCloneCommands, gitEnv, InvalidCommitError, SetupCommandError, type GitHost } from './workspace/clone.js';
export { prepareWorkspaceOnHost, type WorkspaceRequest } from './workspace/prepare.js';
export { ensureDirectoryInside, parseModifiedAt, PathEscapeError, resolveInside, writeWorkspaceFile } from './workspace/files.js';
export { runProcess, capture, SpawnError, type RunOptions, type RunResult } from './process/run.js';
export * from './sandbox/runtime.js';
export { AUTO_ORDER, createRuntime, probeRuntimes, selectRuntime, type RuntimeReport, type Selection } from './sandbox/select.js';
export { ShellRuntime } from './sandbox/shell.js';
export { loadRuntime, type RuntimeOptions } from './sandbox/registry.js';
export { jobRegistryAuth } from './image/auth.js';
export { NETWORK_POLICIES } from './network/policy.js';
export { environmentFileText, execLine, installUnitFiles, renderUnit, selfCommand, SYSTEMD_UNIT_DIR, UnitValueError, type UnitFile, type UnitSection } from './cli/systemd.js';
