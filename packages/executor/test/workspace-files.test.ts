import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  buildStepScript,
  PathEscapeError,
  parseModifiedAt,
  runProcess,
  STEP_SCRIPT_PREAMBLE,
  stepScriptName,
  stepScriptPath,
  writeWorkspaceFile,
} from '../src/index.js';

describe('workspace files', () => {
  let root: string;
  let workspace: string;
  let outside: string;

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-files-'));
    workspace = path.join(root, 'workspace');
    outside = path.join(root, 'outside');
    fs.mkdirSync(workspace);
    fs.mkdirSync(outside);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const refuses = async (relativePath: string) => {
    await assert.rejects(writeWorkspaceFile(workspace, relativePath, { content: Buffer.from('pwned') }), (err: unknown) => {
      assert.ok(err instanceof PathEscapeError, String(err));
      assert.equal(err.message, 'refusing to write outside of working directory');
      assert.equal(err.name, 'PathEscapeError');
      return true;
    });
  };

  it('writes nested files with mode 0777 and the given mtime', async () => {
    const modifiedAt = new Date('2021-03-04T05:06:07Z');
    const written = await writeWorkspaceFile(workspace, 'a/b/c.txt', { content: Buffer.from('hello'), modifiedAt });
    assert.equal(written, path.join(workspace, 'a/b/c.txt'));
    assert.equal(fs.readFileSync(written, 'utf8'), 'hello');
    const stat = fs.statSync(written);
    assert.equal(stat.mode & 0o777, 0o777);
    assert.equal(stat.mtime.toISOString(), modifiedAt.toISOString());
  });

  it('writes streamed content and replaces existing files', async () => {
    await writeWorkspaceFile(workspace, 'streamed.bin', { content: Readable.from([Buffer.from('one '), Buffer.from('two')]) });
    await writeWorkspaceFile(workspace, 'streamed.bin', { content: Buffer.from('three') });
    assert.equal(fs.readFileSync(path.join(workspace, 'streamed.bin'), 'utf8'), 'three');
  });

  it('refuses ../ paths, absolute paths and the workspace root', async () => {
    await refuses('../../etc/passwd');
    await refuses('../outside/file');
    await refuses('a/../../outside/file');
    await refuses(path.join(outside, 'absolute'));
    await refuses('/etc/passwd');
    await refuses('.');
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it('refuses to write through a symlinked directory that points outside', async () => {
    fs.symlinkSync(outside, path.join(workspace, 'escape-dir'));
    await refuses('escape-dir/passwd');
    await refuses('escape-dir/deeper/passwd');
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it('refuses to write through a symlinked file that points outside', async () => {
    const victim = path.join(outside, 'victim');
    fs.writeFileSync(victim, 'original');
    fs.symlinkSync(victim, path.join(workspace, 'escape-file'));
    await refuses('escape-file');
    assert.equal(fs.readFileSync(victim, 'utf8'), 'original');
  });

  it('follows a symlink that stays inside the workspace', async () => {
    fs.mkdirSync(path.join(workspace, 'real-dir'));
    fs.symlinkSync('real-dir', path.join(workspace, 'inner-link'));
    await writeWorkspaceFile(workspace, 'inner-link/file.txt', { content: Buffer.from('ok') });
    assert.equal(fs.readFileSync(path.join(workspace, 'real-dir/file.txt'), 'utf8'), 'ok');
  });

  it('treats the Go zero time as unset', () => {
    assert.equal(parseModifiedAt('0001-01-01T00:00:00Z'), undefined);
    assert.equal(parseModifiedAt(undefined), undefined);
    assert.equal(parseModifiedAt('garbage'), undefined);
    assert.equal(parseModifiedAt('2022-01-02T03:04:05Z')?.toISOString(), '2022-01-02T03:04:05.000Z');
  });
});

describe('step scripts', () => {
  const job = { id: 42, repositoryName: 'github.com/sourcegraph/sourcegraph', commit: 'deadbeef' };

  it('names scripts <jobID>.<i>_<repo with / as _>@<commit>.sh under .sourcegraph-executor', () => {
    assert.equal(stepScriptName(job, 3), '42.3_github.com_sourcegraph_sourcegraph@deadbeef.sh');
    assert.equal(stepScriptPath(job, 0), '.sourcegraph-executor/42.0_github.com_sourcegraph_sourcegraph@deadbeef.sh');
  });

  it('holds the preamble, set -x, then one command per line', () => {
    const script = buildStepScript(['echo one', 'ls -la']);
    assert.ok(script.startsWith(STEP_SCRIPT_PREAMBLE));
    assert.ok(STEP_SCRIPT_PREAMBLE.trimEnd().endsWith('set -x'));
    assert.ok(script.endsWith('\necho one\nls -la\n'));
  });

  it('runs under sh, upgrades to bash when present, and traces commands', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-script-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const scriptPath = path.join(dir, 'step.sh');
    fs.writeFileSync(scriptPath, buildStepScript(['echo "$BASH_VERSION" | grep -q . && echo bash || echo sh', 'false', 'echo after-failure']));
    let stdout = '';
    let stderr = '';
    const result = await runProcess({
      argv: ['/bin/sh', scriptPath],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      onStdout: (c) => (stdout += c),
      onStderr: (c) => (stderr += c),
    });
    const hasBash = fs.existsSync('/bin/bash');
    assert.equal(stdout, `${hasBash ? 'bash' : 'sh'}\nafter-failure\n`);
    assert.match(stderr, /\+ echo after-failure/);
    assert.equal(result.exitCode, 0, 'like Sourcegraph, a failing command does not stop the script');
  });
});
