import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { createGitRepository, makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { gitCloneCommands } from '../src/index.js';

it("the clone's git commands print no advice (default branch, detached HEAD), only what matters", () => {
  const repo = createGitRepository({ 'README.md': 'hello\n' });
  const workspace = makeTempDir('sandfleet-quiet-clone-');
  try {
    const repoDir = path.join(workspace, 'repository');
    fs.mkdirSync(repoDir);
    // Outside any user or system git configuration, as on a fresh executor host.
    const commands = gitCloneCommands({ repositoryName: 'r', commit: repo.commit, fetchTags: false, shallowClone: false, sparseCheckout: null }, repoDir, repo.path, { path: process.env.PATH, home: workspace });
    let output = '';
    for (const command of commands) {
      const result = spawnSync(command.argv[0]!, command.argv.slice(1), { cwd: command.cwd, env: allowFileTransport({ ...command.env, GIT_CONFIG_NOSYSTEM: '1' }), encoding: 'utf8' });
      assert.equal(result.status, 0, `${command.key}: ${result.stderr}`);
      output += result.stdout + result.stderr;
    }
    assert.ok(fs.existsSync(path.join(repoDir, 'README.md')));
    assert.doesNotMatch(output, /hint:|detached HEAD|git switch/, output);
  } finally {
    removeTempDir(workspace);
    repo.cleanup();
  }
});

/** The clone allows only HTTP (the git proxy); this test fetches from a local path instead. */
function allowFileTransport(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const n = Number(env.GIT_CONFIG_COUNT ?? 0);
  return { ...env, GIT_CONFIG_COUNT: String(n + 1), [`GIT_CONFIG_KEY_${n}`]: 'protocol.file.allow', [`GIT_CONFIG_VALUE_${n}`]: 'always' };
}
