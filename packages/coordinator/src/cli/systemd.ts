import path from 'node:path';
import type { Command } from 'commander';
import { environmentFileText, execLine, installUnitFiles, renderUnit, selfCommand, SYSTEMD_UNIT_DIR, UnitValueError, type UnitFile, type UnitSection } from '@sandfleet/executor';
import { ConfigError, loadConfig, serviceSettings } from '../config.js';

/**
 * `sandfleet install systemd`: sandfleet.service and sandfleet.env (the coordinator's settings
 * from the environment the command runs in, 0600). The service runs as a user of its own
 * (DynamicUser), keeps its data in /var/lib/sandfleet and reads the site config as a credential,
 * so the file with the executors' secret stays readable by root alone. Logs: `journalctl -u sandfleet`.
 */

export const STATE_DIRECTORY = '/var/lib/sandfleet';
const SITE_CONFIG_CREDENTIAL = 'site-config.json';

export interface CoordinatorUnitOptions {
  /** The command that runs `sandfleet`; `serve` is appended. */
  exec: readonly string[];
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
      '# The embedded database and repository mirrors, unless sandfleet.env names another place.',
      ['Environment', `SANDFLEET_DATA_DIR=${STATE_DIRECTORY}`],
      ...siteConfig,
      ['EnvironmentFile', options.envFile],
      ['ExecStart', execLine([...options.exec, 'serve'])],
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
  exec?: readonly string[] | undefined;
  user?: string | undefined;
}

/** The files for the configuration in the environment; ConfigError when it is not valid. */
export function coordinatorUnitFiles(options: CoordinatorSystemdOptions): UnitFile[] {
  loadConfig({});
  const settings = serviceSettings();
  const siteConfig = settings.find(([name]) => name === 'SANDFLEET_SITE_CONFIG')?.[1];
  // LoadCredential= takes the path as it is: no quoting, so no room for whitespace or specifiers.
  if (siteConfig && /[\s%]/.test(siteConfig)) throw new UnitValueError(`SANDFLEET_SITE_CONFIG ${JSON.stringify(siteConfig)}: a path without whitespace or % is needed for LoadCredential=`);
  const envFile = path.join(options.unitDir, 'sandfleet.env');
  return [
    { path: envFile, content: environmentFileText(settings.filter(([name]) => name !== 'SANDFLEET_SITE_CONFIG')), mode: 0o600 },
    {
      path: path.join(options.unitDir, 'sandfleet.service'),
      content: coordinatorUnit({ exec: options.exec ?? selfCommand(), envFile, siteConfig: siteConfig && path.resolve(siteConfig), user: options.user }),
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
    .option('--user <user>', 'run as this existing account instead of a dynamic user')
    .option('--dry-run', 'print what would be done without changing anything')
    .action((what: string, opts: { unitDir: string; exec?: string; user?: string; dryRun?: boolean }) => {
      if (what !== 'systemd') {
        process.stderr.write(`unknown install target "${what}"; use systemd\n`);
        process.exitCode = 1;
        return;
      }
      let files: UnitFile[];
      try {
        files = coordinatorUnitFiles({ unitDir: opts.unitDir, exec: opts.exec ? [path.resolve(opts.exec)] : undefined, user: opts.user });
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
