import pc from 'picocolors';
import { CoordinatorClient, connectionOptions, CoordinatorUnreachableError, UnexpectedStatusError } from '../apiclient/client.js';
import { ConfigError, loadConfig, type ExecutorConfig } from '../config.js';
import { gitVersionOutput, isGitVersionSupported, MIN_GIT_VERSION, parseGitVersion, srcCliVersionOutput } from './host-tools.js';
import { probeRuntimes, selectRuntime } from '../sandbox/select.js';
import { vmReport } from './vm-report.js';
import { loadSeccompProfile, SECCOMP_PROFILE, seccompCompilerPresent, SeccompUnavailableError, SECCOMP_BPF_PACKAGE } from '../sandbox/shared/seccomp.js';

/**
 * `executor validate`: configuration, git version, authentication against the
 * instance, and the runtimes. Prints one line per check and returns whether all passed.
 */

export const AUTH_FAILED_MESSAGE = 'failed to authorize with frontend, is executors.accessToken set correctly in the site-config?';

export interface ValidateIo {
  /** Receives each output line (without newline). */
  write: (line: string) => void;
}

export interface ValidateOptions {
  /** Boot a test guest under KVM (`--boot-test`). @default false */
  bootTest?: boolean;
}

export async function runValidation(env: NodeJS.ProcessEnv, io: ValidateIo, options: ValidateOptions = {}): Promise<boolean> {
  const failures: string[] = [];
  const ok = (text: string) => io.write(`${pc.green('✓')} ${text}`);
  const warn = (text: string) => io.write(`${pc.yellow('!')} ${text}`);
  const fail = (text: string, fix?: string) => {
    io.write(`${pc.red('✗')} ${text}`);
    failures.push(fix ?? text);
  };

  let config: ExecutorConfig;
  try {
    config = loadConfig(env);
    ok(`configuration is valid (queues: ${config.queueNames.join(', ')}; name: ${config.executorName})`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) fail(`configuration: ${problem}`);
    return summarize(io, failures);
  }

  const gitOutput = await gitVersionOutput(config.host.path);
  const gitVersion = gitOutput === undefined ? undefined : parseGitVersion(gitOutput);
  if (!gitVersion) fail('git is not installed', 'install git (>= 2.26) and put it on PATH');
  else if (!isGitVersionSupported(gitVersion)) {
    fail(`git ${gitVersion.join('.')} is too old (need >= ${MIN_GIT_VERSION.join('.')})`, `upgrade git to >= ${MIN_GIT_VERSION.join('.')}`);
  } else ok(`git ${gitVersion.join('.')} (>= ${MIN_GIT_VERSION.join('.')})`);

  const srcVersion = await srcCliVersionOutput(config.host.path);
  if (srcVersion === undefined) warn('src-cli ("src") is not installed; only jobs with cliSteps need it');
  else ok(`src-cli: ${srcVersion.split('\n')[0]}`);

  const client = new CoordinatorClient({
    ...connectionOptions(config),
  });
  try {
    await client.testAuth();
    ok(`authorized with ${config.frontendUrl}`);
  } catch (err) {
    if (err instanceof UnexpectedStatusError && err.status === 401) fail(AUTH_FAILED_MESSAGE);
    else if (err instanceof UnexpectedStatusError) fail(`authorization check against ${config.frontendUrl}: ${err.message}`);
    else if (err instanceof CoordinatorUnreachableError) fail(`cannot reach ${config.frontendUrl}: ${err.message}`, `make EXECUTOR_FRONTEND_URL (${config.frontendUrl}) reachable from this host`);
    else throw err;
  }

  // bwrap and runc/crun refuse to run without the seccomp allow-list; say so before their lines.
  try {
    loadSeccompProfile();
    ok(`seccomp allow-list: ${SECCOMP_PROFILE}`);
  } catch (err) {
    if (!(err instanceof SeccompUnavailableError)) throw err;
    warn(`${err.message}: bwrap, runc and crun are unavailable without it`);
  }
  if (!(await seccompCompilerPresent())) warn(`${SECCOMP_BPF_PACKAGE} is not installed: bwrap is unavailable without it (executor install bwrap)`);

  io.write('  virtual machines:');
  for (const line of await vmReport(config, { bootTest: options.bootTest === true })) {
    io.write(`    ${line.level === 'ok' ? pc.green('✓') : line.level === 'warn' ? pc.yellow('!') : pc.dim('·')} ${line.text}`);
  }

  io.write('  runtimes on this host:');
  for (const { name, availability } of await probeRuntimes(config.runtimeConfig, { host: config.host })) {
    io.write(`    ${availability.available ? pc.green('✓') : pc.dim('✗')} ${name.padEnd(11)} ${availability.reason}`);
  }
  try {
    const auto = await selectRuntime({ ...config.runtimeConfig, runtime: 'auto' }, { host: config.host });
    io.write(`  auto would pick: ${auto.runtime.name}`);
  } catch (err) {
    io.write(`  auto would pick: none (${err instanceof Error ? err.message : String(err)})`);
  }
  try {
    const selection = await selectRuntime(config.runtimeConfig, { host: config.host });
    ok(`runtime ${selection.runtime.name}: ${selection.reason}`);
    if (!selection.runtime.isolating) warn('the shell runtime runs job steps directly on this host, without any isolation');
  } catch (err) {
    fail(`runtime: ${err instanceof Error ? err.message : String(err)}`);
  }

  return summarize(io, failures);
}

function summarize(io: ValidateIo, failures: string[]): boolean {
  if (failures.length === 0) {
    io.write(pc.green('All checks passed!'));
    return true;
  }
  io.write(pc.red(`${failures.length} check(s) failed. To fix:`));
  for (const fix of failures) io.write(`  - ${fix}`);
  return false;
}
