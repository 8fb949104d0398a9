import path from 'node:path';
import { ConfigError, executorSettings, loadConfig, type Env } from '../config.js';
import { environmentFileText, execLine, installUnitFiles, renderUnit, selfCommand, SYSTEMD_UNIT_DIR, UnitValueError, type UnitFile } from './systemd.js';

/**
 * `executor install systemd`: executor.service and executor.env (the executor's settings from
 * the environment the command runs in, 0600) in /etc/systemd/system, like Sourcegraph's executor
 * images. Logs go to the journal: `journalctl -u executor`.
 */

/** Time a drained job has after its runtime limit to upload its last log and report its result. */
const STOP_GRACE_SECONDS = 300;

export interface ExecutorUnitOptions {
  /** The command that runs the executor; `run` is appended. */
  exec: readonly string[];
  envFile: string;
  /** EXECUTOR_MAXIMUM_RUNTIME_PER_JOB. */
  maximumRuntimePerJobMs: number;
}

export function executorUnit(options: ExecutorUnitOptions): string {
  const stopSeconds = Math.ceil(options.maximumRuntimePerJobMs / 1000) + STOP_GRACE_SECONDS;
  return renderUnit({
    Unit: [
      ['Description', 'Sandfleet executor: runs jobs from the instance\'s queues in sandboxes'],
      ['Wants', 'network-online.target'],
      ['After', 'network-online.target'],
    ],
    Service: [
      ['Type', 'exec'],
      ['EnvironmentFile', options.envFile],
      ['ExecStart', execLine([...options.exec, 'run'])],
      '# systemctl stop sends SIGTERM to the executor alone: it takes no new job and lets the running',
      '# ones finish (each within EXECUTOR_MAXIMUM_RUNTIME_PER_JOB), then exits 0. The job processes',
      '# are the drain\'s to end, not systemd\'s, so they get no signal of their own.',
      ['KillSignal', 'SIGTERM'],
      ['KillMode', 'mixed'],
      `# The longest job plus ${STOP_GRACE_SECONDS} s to upload its log and report it; SIGKILL after that.`,
      ['TimeoutStopSec', `${stopSeconds}s`],
      '# A crash is restarted; a clean exit (drained, EXECUTOR_NUM_TOTAL_JOBS, EXECUTOR_MAX_ACTIVE_TIME)',
      '# stays stopped, so the machine can be recycled.',
      ['Restart', 'on-failure'],
      ['RestartSec', '10s'],
      '# JSON log lines to the journal, one per entry (SRC_LOG_LEVEL=dbug adds one per request).',
      ['StandardOutput', 'journal'],
      ['StandardError', 'journal'],
      ['SyslogIdentifier', 'executor'],
    ],
    Install: [['WantedBy', 'multi-user.target']],
  });
}

export interface ExecutorSystemdOptions {
  unitDir: string;
  /** The executor command for ExecStart; how this process was started by default. */
  exec?: readonly string[];
  dryRun: boolean;
  write: (line: string) => void;
  /** Why nothing was installed. */
  writeError: (line: string) => void;
}

/** The files for the configuration in `env`; ConfigError when it is not valid (nothing is written). */
export function executorUnitFiles(env: Env, options: Pick<ExecutorSystemdOptions, 'unitDir' | 'exec'>): UnitFile[] {
  const config = loadConfig(env);
  const envFile = path.join(options.unitDir, 'executor.env');
  return [
    { path: envFile, content: environmentFileText(executorSettings(env)), mode: 0o600 },
    { path: path.join(options.unitDir, 'executor.service'), content: executorUnit({ exec: options.exec ?? selfCommand(), envFile, maximumRuntimePerJobMs: config.maximumRuntimePerJobMs }), mode: 0o644 },
  ];
}

/** Returns the exit code: 1 when the configuration is invalid or a value cannot be written. */
export function installExecutorSystemd(env: Env, options: ExecutorSystemdOptions): number {
  let files: UnitFile[];
  try {
    files = executorUnitFiles(env, options);
  } catch (err) {
    if (!(err instanceof ConfigError) && !(err instanceof UnitValueError)) throw err;
    options.writeError(`not installed: ${err.message}`);
    options.writeError('set EXECUTOR_FRONTEND_URL, EXECUTOR_FRONTEND_PASSWORD and EXECUTOR_QUEUE_NAME(S) (and any other EXECUTOR_* setting) in the environment of this command');
    return 1;
  }
  installUnitFiles(files, options);
  if (options.unitDir === SYSTEMD_UNIT_DIR) options.write('then: systemctl daemon-reload && systemctl enable --now executor; logs: journalctl -u executor');
  return 0;
}
