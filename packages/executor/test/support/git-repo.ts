import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A real bare repository with one commit holding `files` (and a tag `v1`), for clone tests. */
export function createBareRepository(files: Record<string, string>): { bare: string; commit: string; cleanup: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-git-'));
  const work = path.join(root, 'work');
  const bare = path.join(root, 'repo.git');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: root,
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
  };
  const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env, encoding: 'utf8' }).trim();
  fs.mkdirSync(work);
  git(work, 'init', '-q', '-b', 'main');
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(work, name)), { recursive: true });
    fs.writeFileSync(path.join(work, name), content);
  }
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'initial');
  git(work, 'tag', 'v1');
  const commit = git(work, 'rev-parse', 'HEAD');
  git(root, 'clone', '-q', '--bare', work, bare);
  // Fetching an exact commit (not a ref) needs this on the serving side.
  git(bare, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
  git(bare, 'config', 'uploadpack.allowFilter', 'true');
  return { bare, commit, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}
