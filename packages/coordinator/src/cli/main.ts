import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Command, Option } from 'commander';
import pino, { type Logger } from 'pino';
import { migrateToLatest, openDatabase } from '@sandfleet/db';
import { ConfigError, loadCliSettings, loadConfig, type CliSettings, type ServeFlags } from '../config.js';
import { startCoordinator } from '../server.js';
import { ApiClient, ApiError } from './api-client.js';
import { readAdminTokenFile, registerAdminTokenCommands, TOKEN_FLAG_REMOVED } from './admin-tokens.js';
import { registerJobCommands } from './jobs.js';
import { registerSystemdCommand } from './systemd.js';
import { registerExecutorSecretCommands } from './executor-secret.js';
import { up } from './up.js';

/** The `sandfleet` command line: the only place that reads argv and installs signal handlers. */
export async function main(argv: string[]): Promise<void> {
  exitQuietlyOnClosedStdout();
  const settings = loadCliSettings();
  const log = pino({ level: settings.logLevel, base: { service: 'coordinator' } });
  const program = buildProgram(settings, log);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ApiError) {
      process.stderr.write(`sandfleet: ${err.message}\n`);
      process.exit(err instanceof ConfigError ? 2 : 1);
    }
    throw err;
  }
}

/** Every command, option and argument, each with its help text (a test holds them to that). */
export function buildProgram(settings: CliSettings, log: Logger): Command {
  const program = new Command('sandfleet').description('Sandfleet coordinator: job queues and the executor API');
  program.version(packageVersion(), '-V, --version', 'print the version and exit');
  program
    .addOption(new Option('--url <url>', 'coordinator URL for client commands').env('SANDFLEET_URL').default('http://127.0.0.1:3080'))
    .addOption(new Option('--token-file <file>', 'file holding the admin token for client commands (else SANDFLEET_ADMIN_TOKEN)'))
    .addOption(new Option('--token <token>', 'refused: it would put the admin token in argv').hideHelp());
  const client = () => {
    const opts = program.opts<{ url: string; tokenFile?: string; token?: string }>();
    if (opts.token !== undefined) throw new ApiError(0, TOKEN_FLAG_REMOVED);
    const token = opts.tokenFile !== undefined ? readAdminTokenFile(opts.tokenFile) : (settings.adminToken ?? readLocalAdminToken());
    return new ApiClient(opts.url, token);
  };

  // No commander defaults here: an unset flag falls back to SANDFLEET_HOST / _PORT / _DATA_DIR in
  // loadConfig, and only then to the built-in default.
  const dataDirOption = '--data-dir <dir>';
  const dataDirHelp = 'data directory: embedded database, mirrors (default: $SANDFLEET_DATA_DIR, else ./data)';
  const serveOptions = (cmd: Command) =>
    cmd
      .option('--host <host>', 'address to listen on (default: $SANDFLEET_HOST, else 127.0.0.1)')
      .option('--port <port>', 'port to listen on (default: $SANDFLEET_PORT, else 3080)')
      .option(dataDirOption, dataDirHelp)
      .option('--site-config <file>', 'site config JSON (externalURL, executors.accessToken)');

  serveOptions(program.command('serve').description('run the coordinator (PostgreSQL when DATABASE_URL is set, else embedded PGlite)')).action(
    async (flags: ServeFlags) => {
      const coordinator = await startCoordinator(loadConfig(flags), log, { guardProcess: true });
      if (coordinator.generatedAdminToken) {
        process.stderr.write(`\nGenerated admin token (shown once, stored hashed): ${coordinator.generatedAdminToken}\n\n`);
      }
      const stop = async () => {
        await coordinator.close();
        process.exit(0);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
  );

  program
    .command('up')
    .description('start a coordinator on the embedded database plus one local executor')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '3080')
    .option('--data-dir <dir>', 'data directory', './data')
    .option('--runtime <runtime>', 'runtime of the local executor (EXECUTOR_RUNTIME)', settings.executorRuntime)
    .action((opts) => up(opts, log));

  program
    .command('migrate')
    .description('apply database migrations and exit')
    .option(dataDirOption, dataDirHelp)
    .action(async (flags: ServeFlags) => {
      const database = await openDatabase(loadConfig(flags).database);
      try {
        const applied = await migrateToLatest(database);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      } finally {
        await database.close();
      }
    });

  const repos = program.command('repos').description('repositories served to executors through the git proxy');
  repos
    .command('add')
    .description('register a repository executors may clone')
    .argument('<name>', 'repository name, e.g. github.com/org/repo')
    .argument('<source>', 'local path or clone URL (mirrored)')
    .action(async (name: string, source: string) => {
      const resolved = /^[\w+.-]+:\/\/|^[\w.-]+@[\w.-]+:/.test(source) ? source : path.resolve(source);
      const repo = await client().request<{ name: string; source: string }>('POST', '/api/repositories', { name, source: resolved });
      console.log(`registered ${repo.name} → ${repo.source}`);
    });
  repos.command('list').description('every registered repository and where it is served from').action(async () => {
    const { repositories } = await client().request<{ repositories: { name: string; source: string }[] }>('GET', '/api/repositories');
    for (const r of repositories) console.log(`${r.name}\t${r.source}`);
  });

  registerJobCommands(program, client);
  registerAdminTokenCommands(program, client);
  registerSystemdCommand(program);
  registerExecutorSecretCommands(program, client);

  program
    .command('executors')
    .description('list executors and whether they are active')
    .action(async () => {
      const { executors } = await client().request<{ executors: { hostname: string; active: boolean; queueName: string | null; queueNames: string[] | null; executorVersion: string; lastSeenAt: string }[] }>('GET', '/api/executors');
      for (const e of executors) {
        console.log(`${e.active ? '●' : '○'} ${e.hostname}  ${(e.queueNames ?? [e.queueName]).join(',')}  ${e.executorVersion}  last seen ${e.lastSeenAt}`);
      }
    });

  program
    .command('queues')
    .description("job counts per state of each queue the coordinator serves (batches, codeintel and the site config's sandfleet.queues)")
    .action(async () => {
      const { queues } = await client().request<{ queues: { name: string; counts: Record<string, number> }[] }>('GET', '/api/queues');
      for (const q of queues) console.log(`${q.name.padEnd(10)} ${Object.entries(q.counts).map(([s, n]) => `${s}=${n}`).join(' ')}`);
    });

  return program;
}

/** `sandfleet jobs logs 1 | head`: once the reader is gone there is nobody to tell; exit without a stack trace. */
function exitQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

function packageVersion(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

/** `sandfleet up` keeps the admin token in ./data; client commands use it when none is given. */
function readLocalAdminToken(): string | undefined {
  try {
    return fs.readFileSync(path.resolve('data', 'admin-token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
