import path from 'node:path';
import type { Command } from 'commander';
import { environmentFileText, execLine, installUnitFiles, renderUnit, selfCommand, SYSTEMD_UNIT_DIR, UnitValueError, type UnitFile, type UnitSection } from '@sandfleet/executor';
import { ConfigError, loadConfig, serviceSettings } from '../config.js';

/**
 * `sandfleet install systemd`: sandfleet.service and sandfleet.env (the coordinator's settings
 * from the environment the command runs in, 0600). The service runs as a user of its own
 * (DynamicUser), keeps its data in /var/lib/sandfleet (SANDFLEET_DATA_DIR is not used) and reads
 * the site config as a credential,
 * so the file with the executors' secret stays readable by root alone. Logs: `journalctl -u sandfleet`.
 */

export const STATE_DIRECTORY = '/var/lib/sandfleet';
const SITE_CONFIG_CREDENTIAL = 'site-config.json';

/** Settings passed to `serve` as flags in ExecStart (a flag's default would win over them in the environment). */
const FLAG_SETTINGS = ['SANDFLEET_HOST', 'SANDFLEET_PORT', 'SANDFLEET_DATA_DIR', 'SANDFLEET_SITE_CONFIG'];

export interface CoordinatorUnitOptions {
  /** The command that runs `sandfleet`; `serve` and its flags are appended. */
  exec: readonly string[];
  host: string;
  port: string;
  envFile: string;
  /** SANDFLEET_SITE_CONFIG, handed to the service as a credential. */
  siteConfig?: string | undefined;
  /** An existing account to run as; undefined: a dynamic user of the unit's own. */
  user?: string | undefined;
}

export function coordinatorUnit(options: CoordinatorUnitOptions): string {
  const account: UnitSection = options.user
    ? [['User', options.user]]
    : ['# A user that exists only while the service runs: no login, no files elsewhere, no privileges.', ['DynamicUser', 'yes']];
  const siteConfig: UnitSection = options.siteConfig
    ? [
        '# The site config holds executors.accessToken: systemd reads it as root and gives the service a private copy.',
        ['LoadCredential', `${SITE_CONFIG_CREDENTIAL}:${options.siteConfig}`],
        ['Environment', `SANDFLEET_SITE_CONFIG=%d/${SITE_CONFIG_CREDENTIAL}`],
      ]
    : [];
  return renderUnit({
    Unit: [
      ['Description', 'Sandfleet coordinator: job queues, the executor API and the web UI'],
      ['Wants', 'network-online.target'],
      ['After', 'network-online.target postgresql.service'],
    ],
    Service: [
      ['Type', 'exec'],
      ...account,
      ['StateDirectory', 'sandfleet'],
      ['StateDirectoryMode', '0700'],
      ['WorkingDirectory', STATE_DIRECTORY],
      ...siteConfig,
      ['EnvironmentFile', options.envFile],
      '# The data directory holds the embedded database (when DATABASE_URL is unset) and repository mirrors.',
      ['ExecStart', execLine([...options.exec, 'serve', '--host', options.host, '--port', options.port, '--data-dir', STATE_DIRECTORY])],
      '# SIGTERM closes the listener and the database, then the coordinator exits.',
      ['KillSignal', 'SIGTERM'],
      ['TimeoutStopSec', '60s'],
      ['Restart', 'on-failure'],
      ['RestartSec', '5s'],
      '# Exit 2 is an invalid configuration: restarting cannot fix it.',
      ['RestartPreventExitStatus', '2'],
      '# JSON log lines to the journal, one per entry.',
      ['StandardOutput', 'journal'],
      ['StandardError', 'journal'],
      ['SyslogIdentifier', 'sandfleet'],
    ],
    Install: [['WantedBy', 'multi-user.target']],
  });
}

export interface CoordinatorSystemdOptions {
  unitDir: string;
  /** Where `serve` listens; SANDFLEET_HOST / SANDFLEET_PORT, else 127.0.0.1:3080, when undefined. */
  host?: string | undefined;
  port?: string | undefined;
  exec?: readonly string[] | undefined;
  user?: string | undefined;
}

/** The files for the configuration in the environment; ConfigError when it is not valid. */
export function coordinatorUnitFiles(options: CoordinatorSystemdOptions): UnitFile[] {
  loadConfig({});
  const settings = serviceSettings();
  const setting = (name: string) => settings.find(([n]) => n === name)?.[1];
  const siteConfig = setting('SANDFLEET_SITE_CONFIG');
  // LoadCredential= takes the path as it is: no quoting, so no room for whitespace or specifiers.
  if (siteConfig && /[\s%]/.test(siteConfig)) throw new UnitValueError(`SANDFLEET_SITE_CONFIG ${JSON.stringify(siteConfig)}: a path without whitespace or % is needed for LoadCredential=`);
  const envFile = path.join(options.unitDir, 'sandfleet.env');
  return [
    { path: envFile, content: environmentFileText(settings.filter(([name]) => !FLAG_SETTINGS.includes(name))), mode: 0o600 },
    {
      path: path.join(options.unitDir, 'sandfleet.service'),
      content: coordinatorUnit({
        exec: options.exec ?? selfCommand(),
        host: options.host ?? setting('SANDFLEET_HOST') ?? '127.0.0.1',
        port: options.port ?? setting('SANDFLEET_PORT') ?? '3080',
        envFile,
        siteConfig: siteConfig && path.resolve(siteConfig),
        user: options.user,
      }),
      mode: 0o644,
    },
  ];
}

export function registerSystemdCommand(program: Command): void {
  program
    .command('install')
    .description('write the systemd unit: sandfleet.service and sandfleet.env, from this environment (DATABASE_URL, SANDFLEET_*)')
    .argument('<what>', 'systemd')
    .option('--unit-dir <dir>', 'where the unit and its environment file go', SYSTEMD_UNIT_DIR)
    .option('--exec <path>', 'the sandfleet launcher ExecStart runs (default: this one)')
    .option('--host <host>', 'address `serve` listens on (default: SANDFLEET_HOST, else 127.0.0.1)')
    .option('--port <port>', 'port `serve` listens on (default: SANDFLEET_PORT, else 3080)')
    .option('--user <user>', 'run as this existing account instead of a dynamic user')
    .option('--dry-run', 'print what would be done without changing anything')
    .action((what: string, opts: { unitDir: string; exec?: string; host?: string; port?: string; user?: string; dryRun?: boolean }) => {
      if (what !== 'systemd') {
        process.stderr.write(`unknown install target "${what}"; use systemd\n`);
        process.exitCode = 1;
        return;
      }
      let files: UnitFile[];
      try {
        files = coordinatorUnitFiles({ unitDir: opts.unitDir, exec: opts.exec ? [path.resolve(opts.exec)] : undefined, host: opts.host, port: opts.port, user: opts.user });
      } catch (err) {
        if (!(err instanceof ConfigError) && !(err instanceof UnitValueError)) throw err;
        process.stderr.write(`not installed: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      installUnitFiles(files, { dryRun: opts.dryRun === true, write: (l) => process.stdout.write(`${l}\n`) });
      if (opts.unitDir === SYSTEMD_UNIT_DIR) process.stdout.write('then: systemctl daemon-reload && systemctl enable --now sandfleet; logs: journalctl -u sandfleet\n');
    });
}
