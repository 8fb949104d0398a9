import { Command } from 'commander';
import { Agent } from '../agent/agent.js';
import { CoordinatorClient, connectionOptions } from '../apiclient/client.js';
import { ConfigError, loadConfig, type ExecutorConfig } from '../config.js';
import { gitVersionOutput, srcCliVersionOutput } from './host-tools.js';
import { registerInstallCommand } from './install.js';
import { createLogger } from '../logger.js';
import { selectRuntime } from '../sandbox/select.js';
import { runTestVm } from './test-vm.js';
import { runValidation } from './validate.js';
import { EXECUTOR_VERSION, executorCommit } from '../version.js';

/**
 * The `executor` command line. Exit codes: 0 after a clean drain (SIGTERM/SIGINT,
 * EXECUTOR_MAX_ACTIVE_TIME, EXECUTOR_NUM_TOTAL_JOBS) or when validation passed; 1 for an invalid
 * configuration, a failed validation, or no usable runtime.
 */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;

/** `env`: the process environment, read here and nowhere else below the CLI. */
export function buildProgram(env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command()
    .name('executor')
    .description('Sandfleet executor: runs jobs from a Sourcegraph-compatible executor queue in sandboxes')
    .version(`${EXECUTOR_VERSION} (commit ${executorCommit()})`, '-V, --version', 'print the version and the commit it was built from');

  program
    .command('run', { isDefault: true })
    .description('dequeue and run jobs until drained (the default command)')
    .option('--verify', 'run the checks of `executor validate` first and refuse to start if one fails')
    .action(async (options: { verify?: boolean }) => {
      process.exitCode = await runCommand(env, { verify: options.verify === true });
    });

  program
    .command('validate')
    .description('check the configuration, git, access to the instance, KVM and the VM tools, and the runtimes')
    .option('--boot-test', 'also boot a test guest under KVM (skipped where KVM is unusable)')
    .action(async (options: { bootTest?: boolean }) => {
      const passed = await runValidation(env, { write: (line) => process.stdout.write(`${line}\n`) }, { bootTest: options.bootTest === true });
      process.exitCode = passed ? EXIT_OK : EXIT_FAILURE;
    });

  program
    .command('test-vm')
    .description('boot a VM with the configured VM runtime, run a command in it and print the timings')
    .option('--command <script>', 'what to run in the guest with sh -c', 'uname -r')
    .action(async (options: { command: string }) => {
      const passed = await runTestVm(env, { command: options.command, write: (line) => process.stdout.write(`${line}\n`) });
      process.exitCode = passed ? EXIT_OK : EXIT_FAILURE;
    });

  registerInstallCommand(program, env);
  return program;
}

async function runCommand(env: NodeJS.ProcessEnv, options: { verify: boolean }): Promise<number> {
  let config: ExecutorConfig;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return EXIT_FAILURE;
  }
  if (options.verify) {
    const passed = await runValidation(env, { write: (line) => process.stderr.write(`${line}\n`) });
    if (!passed) return EXIT_FAILURE;
  }
  const log = createLogger({ level: config.logLevel, executorName: config.executorName });
  log.info({ version: EXECUTOR_VERSION, commit: executorCommit() }, 'sandfleet executor');

  let runtime;
  try {
    const selection = await selectRuntime(config.runtimeConfig, { host: config.host });
    runtime = selection.runtime;
    log.info({ runtime: runtime.name, reason: selection.reason }, 'runtime selected');
  } catch (err) {
    log.fatal({ err }, 'no usable runtime');
    return EXIT_FAILURE;
  }
  if (!runtime.isolating) {
    log.warn(
      { runtime: runtime.name },
      'WARNING: the shell runtime runs job steps directly on this host with no isolation: steps can read this executor\'s secrets (its environment and EXECUTOR_FRONTEND_PASSWORD) and everything it can; use it only for trusted jobs',
    );
  }

  const [gitVersion, srcCliVersion] = await Promise.all([gitVersionOutput(config.host.path), srcCliVersionOutput(config.host.path)]);
  const client = new CoordinatorClient({
    ...connectionOptions(config),
    resources: { numCPUs: config.jobNumCpus, memory: config.jobMemory, diskSpace: config.diskSpace },
    telemetry: { gitVersion: gitVersion ?? '', srcCliVersion: srcCliVersion ?? '', runtime: runtime.name },
    onRetry: ({ path, attempt, error }) => log.warn({ path, attempt, err: { message: error.message } }, 'request failed, retrying'),
    onRequest: (request) => log.debug(request, 'request'),
  });
  const agent = new Agent({ config, client, runtime, log });

  // First signal drains; a second one aborts the running jobs (they are reported errored).
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) agent.drain(signal);
    else agent.abortJobs('shutdown');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await agent.run();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  return EXIT_OK;
}

/** Entry point of bin/executor.js. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (err) {
    process.stderr.write(`executor: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
}
