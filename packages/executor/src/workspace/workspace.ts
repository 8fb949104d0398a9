import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { WireJob } from '@sandfleet/protocol';
import { startGitProxy } from './git-proxy.js';
import { openStepLog, runHostCommand, type HostCommand, type JobLogContext } from '../logs/logged-command.js';
import { buildStepScript, stepScriptPath } from './step-script.js';
import { ensureDirectoryInside, parseModifiedAt, resolveInside, writeWorkspaceFile } from './files.js';
import { SandfleetError } from '@sandfleet/protocol';

/**
 * A job's workspace (reference §9): a fresh directory, the repository fetched through the git proxy,
 * the job's files and the step scripts. Every step of the setup is its own log entry.
 */

export interface Workspace {
  /** Absolute path of the workspace root. */
  readonly dir: string;
  remove(): Promise<void>;
}

/** A setup command exited non-zero; the job errors with this message. */
export class SetupCommandError extends SandfleetError {
  constructor(readonly key: string, readonly exitCode: number) {
    super(`failed ${key}: exit code ${exitCode}`);
  }
}

/** Creates `<parentDir>/workspace-<jobId>-XXXXXX`. */
export async function createWorkspace(parentDir: string, jobId: number): Promise<Workspace> {
  await fs.mkdir(parentDir, { recursive: true });
  const dir = await fs.mkdtemp(path.join(parentDir, `workspace-${jobId}-`));
  return { dir, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

/**
 * The environment of git commands: nothing from the host but PATH and HOME, never a prompt (a
 * credential prompt would hang the job), and no LFS downloads (the git proxy has no LFS endpoint).
 */
export function gitEnv(hostEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return {
    PATH: hostEnv.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    ...(hostEnv.HOME ? { HOME: hostEnv.HOME } : {}),
    GIT_TERMINAL_PROMPT: '0',
    GIT_LFS_SKIP_SMUDGE: '1',
  };
}

type CloneFields = Pick<WireJob, 'repositoryName' | 'commit' | 'fetchTags' | 'shallowClone' | 'sparseCheckout'>;

/** The git commands of a clone, in order, with their log keys (reference §9). */
export function gitCloneCommands(job: CloneFields, repoDir: string, cloneUrl: string): HostCommand[] {
  const env = gitEnv();
  const git = (key: string, ...args: string[]): HostCommand => ({ key, argv: ['git', '-C', repoDir, ...args], cwd: repoDir, env });
  const sparse = job.sparseCheckout ?? [];
  const fetchOptions = [
    ...(job.fetchTags ? ['--tags'] : []),
    ...(job.shallowClone ? [...(job.fetchTags ? [] : ['--no-tags']), '--depth=1'] : []),
    // Fetch no blobs up front; the sparse checkout downloads only the ones it needs.
    ...(sparse.length > 0 ? ['--filter=blob:none'] : []),
  ];
  return [
    git('setup.git.init', 'init'),
    git('setup.git.add-remote', 'remote', 'add', 'origin', cloneUrl),
    // gc would only slow a throwaway clone down.
    git('setup.git.disable-gc', 'config', '--local', 'gc.auto', '0'),
    git('setup.git.fetch', '-c', 'protocol.version=2', 'fetch', '--progress', '--no-recurse-submodules', ...fetchOptions, 'origin', job.commit),
    ...(sparse.length > 0
      ? [
          git('setup.git.sparse-checkout-config', 'config', '--local', 'core.sparseCheckout', '1'),
          git('setup.git.sparse-checkout-set', 'sparse-checkout', 'set', '--no-cone', '--', ...sparse),
        ]
      : []),
    // A sparse checkout fetches its blobs lazily, through the proxy that is still the remote here.
    git('setup.git.checkout', ...(sparse.length > 0 ? ['-c', 'protocol.version=2'] : []), 'checkout', '--progress', '--force', job.commit),
    // Tools that read the remote (code-intel indexers) should see the repository name, not the proxy.
    git('setup.git.set-remote', 'remote', 'set-url', 'origin', job.repositoryName),
  ];
}

export interface CloneOptions {
  workspaceDir: string;
  frontendUrl: string;
  /** Authorization, X-Sourcegraph-Job-ID and X-Sourcegraph-Executor-Name for the git proxy. */
  jobHeaders: Readonly<Record<string, string>>;
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
  const repoDir = await ensureDirectoryInside(options.workspaceDir, job.repositoryDirectory);
  const proxy = await startGitProxy({
    frontendUrl: options.frontendUrl,
    repositoryName: job.repositoryName,
    jobHeaders: options.jobHeaders,
  });
  try {
    for (const command of gitCloneCommands(job, repoDir, `${proxy.url}/${job.repositoryName}`)) {
      const result = await runHostCommand(ctx, command, signal);
      if (result.exitCode !== 0 || result.aborted) throw new SetupCommandError(command.key, result.exitCode);
    }
  } finally {
    await proxy.close();
  }
  return repoDir;
}

export interface WriteFilesOptions {
  workspaceDir: string;
  /** Fetches a `bucket`/`key` file from the files API. */
  getFile: (bucket: string, key: string, signal: AbortSignal) => Promise<Readable>;
}

type FileFields = Pick<WireJob, 'id' | 'version' | 'files' | 'dockerSteps' | 'repositoryName' | 'commit'>;

/**
 * Writes the job's `files` and one script per docker step, as the log entry `setup.fs.extras`.
 * Returns the step scripts' paths relative to the workspace, by step index.
 */
export async function writeJobFiles(ctx: JobLogContext, job: FileFields, options: WriteFilesOptions, signal: AbortSignal): Promise<string[]> {
  const files = Object.entries(job.files ?? {});
  const steps = job.dockerSteps ?? [];
  if (files.length === 0 && steps.length === 0) return [];
  const entry = openStepLog(ctx, 'setup.fs.extras', []);
  try {
    for (const [relativePath, file] of files) {
      const started = Date.now();
      // Check the path before fetching anything for it.
      resolveInside(options.workspaceDir, relativePath);
      const content =
        file.bucket && file.key
          ? await options.getFile(file.bucket, file.key, signal)
          : Buffer.from(file.content ?? '', job.version === 2 ? 'base64' : 'utf8');
      await writeWorkspaceFile(options.workspaceDir, relativePath, { content, modifiedAt: parseModifiedAt(file.modifiedAt) });
      entry.writeLine(`Wrote ${relativePath} in ${Date.now() - started}ms`);
    }
    const scripts = steps.map((_, i) => stepScriptPath(job, i));
    for (const [i, step] of steps.entries()) {
      await writeWorkspaceFile(options.workspaceDir, scripts[i]!, { content: Buffer.from(buildStepScript(step.commands)) });
      entry.writeLine(`Wrote ${scripts[i]}`);
    }
    await entry.finish(0);
    return scripts;
  } catch (err) {
    entry.writeLine(err instanceof Error ? err.message : String(err));
    // A failed upload of this entry must not hide the original error.
    await entry.finish(1).catch(() => {});
    throw err;
  }
}
