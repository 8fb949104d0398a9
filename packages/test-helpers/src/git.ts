import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, removeTempDir } from './temp-dirs.js';

export interface GitRepository {
  /** The working repository (checked-out files, one commit on `main`, tag `v1`). */
  path: string;
  commit: string;
  cleanup: () => void;
}

export interface BareGitRepository {
  /** A bare clone of the working repository, serving any commit and partial clones. */
  bare: string;
  commit: string;
  cleanup: () => void;
}

/** A deterministic identity and no user or system git config, so hosts do not change the result. */
function gitEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
  };
}

function gitIn(cwd: string, env: Record<string, string>, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env, encoding: 'utf8' }).trim();
}

function commitFiles(work: string, env: Record<string, string>, files: Record<string, string>): string {
  gitIn(work, env, 'init', '-q', '-b', 'main');
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(work, name)), { recursive: true });
    fs.writeFileSync(path.join(work, name), content);
  }
  gitIn(work, env, 'add', '-A');
  gitIn(work, env, 'commit', '-q', '-m', 'initial');
  gitIn(work, env, 'tag', 'v1');
  return gitIn(work, env, 'rev-parse', 'HEAD');
}

/** A real repository with one commit holding `files`; removed by cleanup or when the test file ends. */
export function createGitRepository(files: Record<string, string>): GitRepository {
  const dir = makeTempDir('sandfleet-test-repo-', { untilFileEnds: true });
  const commit = commitFiles(dir, gitEnv(dir), files);
  return { path: dir, commit, cleanup: () => removeTempDir(dir) };
}

/**
 * A real bare repository with one commit holding `files` (and a tag `v1`), for clone tests;
 * removed by cleanup or when the test file ends.
 */
export function createBareRepository(files: Record<string, string>): BareGitRepository {
  const root = makeTempDir('sandfleet-test-git-', { untilFileEnds: true });
  const work = path.join(root, 'work');
  const bare = path.join(root, 'repo.git');
  const env = gitEnv(root);
  fs.mkdirSync(work);
  const commit = commitFiles(work, env, files);
  gitIn(root, env, 'clone', '-q', '--bare', work, bare);
  // Fetching an exact commit (not a ref) needs this on the serving side.
  gitIn(bare, env, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
  gitIn(bare, env, 'config', 'uploadpack.allowFilter', 'true');
  return { bare, commit, cleanup: () => removeTempDir(root) };
}
