import { SandfleetError } from '@sandfleet/protocol';
import type { WireJob } from '@sandfleet/protocol';
import { runHostCommand, type HostCommand, type JobLogContext } from '../logs/logged-command.js';
import { ensureDirectoryInside } from './files.js';
import { startGitProxy } from './git-proxy.js';

/**
 * The repository part of a job's workspace: the job's repository at its commit, fetched on the host
 * through a local git proxy that adds the job's credentials. Every git command is its own log entry.
 */

/** A setup command exited non-zero; the job errors with this message. */
export class SetupCommandError extends SandfleetError {
  constructor(readonly key: string, readonly exitCode: number) {
    super(`failed ${key}: exit code ${exitCode}`);
  }
}

/** The executor's PATH and HOME as git sees them (config.ts reads them). */
export interface GitHost {
  path?: string;
  home?: string | undefined;
}

/** The commit is not a full object id: it could be read as an option or a revision expression. */
export class InvalidCommitError extends SandfleetError {
  constructor(readonly commit: string) {
    super(`refusing to fetch commit ${JSON.stringify(commit.slice(0, 80))}: it must be a full 40 or 64 digit hexadecimal object id`);
  }
}

const DEFAULT_GIT_PATH = '/usr/local/bin:/usr/bin:/bin';
const OBJECT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

/**
 * Configuration every git command gets, in command-line scope (through GIT_CONFIG_COUNT, so no
 * repository or user file can override it): no hooks, no fsmonitor program, and no transport but
 * HTTP (the git proxy), so a hostile repository cannot make host git run anything of its own.
 */
const HARDENING_CONFIG: readonly (readonly [string, string])[] = [
  ['core.hooksPath', '/dev/null'],
  ['core.fsmonitor', 'false'],
  ['protocol.allow', 'never'],
  ['protocol.http.allow', 'always'],
  ['submodule.recurse', 'false'],
];

/**
 * The environment of git commands: nothing from the host but PATH and HOME, never a prompt (a
 * credential prompt would hang the job), no LFS downloads (the git proxy has no LFS endpoint), no
 * system or global configuration (root's ~/.gitconfig is not the job's), the hardening above, and
 * `config` (e.g. the git proxy's header; through the environment, never argv).
 */
export function gitEnv(host: GitHost = {}, config: Readonly<Record<string, string>> = {}): Record<string, string> {
  const pairs = [...HARDENING_CONFIG, ...Object.entries(config)];
  const env: Record<string, string> = {
    PATH: host.path ?? DEFAULT_GIT_PATH,
    ...(host.home ? { HOME: host.home } : {}),
    GIT_TERMINAL_PROMPT: '0',
    GIT_LFS_SKIP_SMUDGE: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_COUNT: String(pairs.length),
  };
  pairs.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}

/** Throws InvalidCommitError unless `commit` is a full hexadecimal object id. */
export function assertObjectId(commit: string): void {
  if (!OBJECT_ID.test(commit)) throw new InvalidCommitError(commit);
}

type CloneFields = Pick<WireJob, 'repositoryName' | 'commit' | 'fetchTags' | 'shallowClone' | 'sparseCheckout'>;

/** The git commands of a clone, in order, with their log keys. */
export function gitCloneCommands(job: CloneFields, repoDir: string, cloneUrl: string, host: GitHost = {}, config: Readonly<Record<string, string>> = {}): HostCommand[] {
  assertObjectId(job.commit);
  const env = gitEnv(host, config);
  const git = (key: string, ...args: string[]): HostCommand => ({ key, argv: ['git', '-C', repoDir, ...args], cwd: repoDir, env });
  const sparse = job.sparseCheckout ?? [];
  const fetchOptions = [
    ...(job.fetchTags ? ['--tags'] : []),
    ...(job.shallowClone ? [...(job.fetchTags ? [] : ['--no-tags']), '--depth=1'] : []),
    // Fetch no blobs up front; the sparse checkout downloads only the ones it needs.
    ...(sparse.length > 0 ? ['--filter=blob:none'] : []),
  ];
  return [
    // git's own settings silence its advice (default branch name, detached HEAD); errors still show.
    git('setup.git.init', '-c', 'init.defaultBranch=main', 'init'),
    git('setup.git.add-remote', 'remote', 'add', 'origin', cloneUrl),
    // gc would only slow a throwaway clone down.
    git('setup.git.disable-gc', 'config', '--local', 'gc.auto', '0'),
    git('setup.git.fetch', '-c', 'protocol.version=2', 'fetch', '--progress', '--no-recurse-submodules', ...fetchOptions, '--end-of-options', 'origin', job.commit),
    ...(sparse.length > 0
      ? [
          git('setup.git.sparse-checkout-config', 'config', '--local', 'core.sparseCheckout', '1'),
          git('setup.git.sparse-checkout-set', 'sparse-checkout', 'set', '--no-cone', '--', ...sparse),
        ]
      : []),
    // A sparse checkout fetches its blobs lazily, through the proxy that is still the remote here.
    // checkout takes no --end-of-options (git 2.39); the validated id cannot be an option, and the
    // trailing `--` keeps it from being read as a path.
    git('setup.git.checkout', '-c', 'advice.detachedHead=false', ...(sparse.length > 0 ? ['-c', 'protocol.version=2'] : []), 'checkout', '--progress', '--force', job.commit, '--'),
    // Tools that read the remote (code-intel indexers) should see the repository name, not the proxy.
    git('setup.git.set-remote', 'remote', 'set-url', '--end-of-options', 'origin', job.repositoryName),
  ];
}

export interface CloneOptions {
  workspaceDir: string;
  frontendUrl: string;
  /** Authorization, X-Sourcegraph-Job-ID and X-Sourcegraph-Executor-Name for the git proxy. */
  jobHeaders: Readonly<Record<string, string>>;
  /** PATH and HOME of the executor, for git. */
  host?: GitHost;
}

/**
 * Clones the job's repository at its commit into `<workspace>/<repositoryDirectory>` through a local
 * git proxy that exists only for the duration of the clone. Throws SetupCommandError on a failed step.
 */
export async function cloneRepository(
  ctx: JobLogContext,
  job: CloneFields & Pick<WireJob, 'repositoryDirectory'>,
  options: CloneOptions,
  signal: AbortSignal,
): Promise<string> {
  assertObjectId(job.commit);
  const repoDir = await ensureDirectoryInside(options.workspaceDir, job.repositoryDirectory);
  const proxy = await startGitProxy({
    frontendUrl: options.frontendUrl,
    repositoryName: job.repositoryName,
    jobHeaders: options.jobHeaders,
  });
  try {
    for (const command of gitCloneCommands(job, repoDir, `${proxy.url}/${job.repositoryName}`, options.host, proxy.gitConfig)) {
      const result = await runHostCommand(ctx, command, signal);
      if (result.exitCode !== 0 || result.aborted) throw new SetupCommandError(command.key, result.exitCode);
    }
  } finally {
    await proxy.close();
  }
  return repoDir;
}
