import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import pc from 'picocolors';
import { loadConfig } from '../config.js';
import { randomToken } from '../http/secrets.js';
import { startCoordinator } from '../server.js';
import { ApiClient } from './api-client.js';

export interface UpOptions {
  host: string;
  port: string;
  dataDir: string;
  runtime: string;
}

/**
 * The one-command start: a coordinator on the embedded database plus one local executor, with a
 * demo repository and a demo job ready to submit. Secrets are generated on first start and kept in
 * the data directory (mode 0600) so later starts print the same ones.
 */
export async function up(options: UpOptions, log: Logger): Promise<void> {
  const dataDir = path.resolve(options.dataDir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const accessToken = readOrCreateSecret(path.join(dataDir, 'executor-access-token'));
  const adminToken = readOrCreateSecret(path.join(dataDir, 'admin-token'));
  const siteConfigPath = path.join(dataDir, 'site-config.json');
  const externalURL = `http://${options.host}:${options.port}`;
  if (!fs.existsSync(siteConfigPath)) {
    fs.writeFileSync(siteConfigPath, JSON.stringify({ externalURL, 'executors.accessToken': accessToken }, null, 2) + '\n', { mode: 0o600 });
  }

  const env: NodeJS.ProcessEnv = { ...process.env, SANDFLEET_ADMIN_TOKEN: adminToken, SANDFLEET_SERVE_DEMO_IMAGE: 'true' };
  delete env.DATABASE_URL; // `up` is the embedded set-up by definition
  const config = loadConfig({ host: options.host, port: options.port, dataDir, siteConfig: siteConfigPath }, env);
  const coordinator = await startCoordinator(config, log, { guardProcess: true });

  const demo = createDemoRepository(path.join(dataDir, 'demo-repo'));
  await new ApiClient(coordinator.url, adminToken).request('POST', '/api/repositories', { name: 'demo/hello', source: demo.path });
  const demoJobPath = path.join(dataDir, 'demo-job.json');
  fs.writeFileSync(demoJobPath, JSON.stringify(demoJob(demo.commit), null, 2) + '\n');

  const executor = spawn(process.execPath, [executorBin(), 'run'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      EXECUTOR_FRONTEND_URL: coordinator.url,
      EXECUTOR_FRONTEND_PASSWORD: config.executorAccessToken!,
      // Every queue, also those declared in the data directory's site config.
      EXECUTOR_QUEUE_NAMES: config.queues.names.join(','),
      EXECUTOR_RUNTIME: options.runtime,
      // The coordinator serves the demo image; as a mirror it is asked before any outside registry.
      EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: coordinator.url,
      EXECUTOR_MAXIMUM_NUM_JOBS: '2',
      EXECUTOR_STATE_DIR: path.join(dataDir, 'executor'),
      EXECUTOR_WORKSPACE_DIR: path.join(dataDir, 'workspaces'),
    },
  });

  const rel = path.relative(process.cwd(), demoJobPath) || demoJobPath;
  const secretFile = path.join(dataDir, 'executor-access-token');
  process.stderr.write(
    [
      '',
      pc.bold('Sandfleet is up.'),
      `  web UI:       ${pc.cyan(coordinator.url + '/')}  (sign in with the admin token)`,
      `  admin token:  ${adminToken}`,
      `  executor secret (EXECUTOR_FRONTEND_PASSWORD): ${config.executorAccessToken} (kept in ${secretFile})`,
      `  executor:     1 local executor (runtime ${options.runtime}), queues ${config.queues.names.join(', ')}`,
      '',
      'Submit the demo job and follow its log (in another terminal):',
      `  ${pc.cyan(`SANDFLEET_URL=${coordinator.url} SANDFLEET_ADMIN_TOKEN=${adminToken} npx sandfleet jobs submit ${rel} --follow`)}`,
      '',
      'Add an executor on a second machine (listen on an address it can reach: --host):',
      `  ${pc.cyan(`EXECUTOR_FRONTEND_URL=${config.externalUrl} EXECUTOR_FRONTEND_PASSWORD=${config.executorAccessToken} EXECUTOR_QUEUE_NAME=batches npx executor run`)}`,
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await stopNow(executor);
    await coordinator.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  executor.once('exit', (code) => {
    if (!stopping) {
      log.error({ code }, 'the local executor exited; stopping');
      void stop();
    }
  });
}

/** How long the executor may take to report its aborted jobs and exit before it is killed. */
const EXECUTOR_STOP_GRACE_MS = 15_000;

/**
 * Stops the local executor now. Ctrl-C in a terminal signals the whole process group, the executor
 * included; a signal to this process alone (a supervisor, `kill`) must stop it just as promptly. The
 * executor drains on a first signal and aborts its running jobs (reported errored) on a second, so
 * it gets both; it is killed if it still has not exited after EXECUTOR_STOP_GRACE_MS.
 */
async function stopNow(executor: ChildProcess): Promise<void> {
  if (executor.exitCode !== null || executor.signalCode !== null) return;
  const exited = new Promise((resolve) => executor.once('exit', resolve));
  executor.kill('SIGTERM');
  executor.kill('SIGINT');
  const kill = setTimeout(() => executor.kill('SIGKILL'), EXECUTOR_STOP_GRACE_MS);
  await exited;
  clearTimeout(kill);
}

function readOrCreateSecret(file: string): string {
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const secret = randomToken();
  fs.writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

function executorBin(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@sandfleet/executor/package.json')), 'bin', 'executor.js');
}

function createDemoRepository(dir: string): { path: string; commit: string } {
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();
  if (!fs.existsSync(path.join(dir, '.git'))) {
    fs.mkdirSync(dir, { recursive: true });
    git('init', '--quiet', '--initial-branch=main');
    fs.writeFileSync(path.join(dir, 'README.md'), '# demo/hello\n\nA tiny repository served by the Sandfleet coordinator.\n');
    fs.writeFileSync(path.join(dir, 'count.sh'), 'for i in 1 2 3; do echo "counting $i"; sleep 1; done\n');
    git('add', '.');
    git('-c', 'user.name=Sandfleet', '-c', 'user.email=demo@sandfleet.invalid', 'commit', '--quiet', '-m', 'demo repository');
  }
  return { path: dir, commit: git('rev-parse', 'HEAD') };
}

function demoJob(commit: string) {
  return {
    queue: 'batches',
    repositoryName: 'demo/hello',
    commit,
    files: { 'greeting.txt': { content: 'hello from a file written by the executor\n' } },
    dockerSteps: [
      { key: 'look', image: 'sandfleet/demo:latest', commands: ['cat README.md', 'cat greeting.txt', 'echo "the secret is $DEMO_SECRET"'], dir: '', env: ['DEMO_SECRET=swordfish-1234'] },
      { key: 'count', image: 'sandfleet/demo:latest', commands: ['sh count.sh', 'echo done'], dir: '' },
    ],
    redactedValues: { 'swordfish-1234': '[REDACTED]' },
  };
}
