import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  cloneRepository,
  CoordinatorClient,
  gitCloneCommands,
  Redactor,
  buildRedactions,
  SetupCommandError,
  startGitProxy,
  type JobLogContext,
} from '../src/index.js';
import { createBareRepository, rawGetStatus, TestInstance } from '@sandfleet/test-helpers';

const REPO = 'github.com/sandfleet/tiny';
const TOKEN = 'job-token-secret-9f8e7d';

describe('git clone through the local git proxy', () => {
  let instance: TestInstance;
  let repo: ReturnType<typeof createBareRepository>;
  let client: CoordinatorClient;
  let root: string;

  before(async () => {
    instance = await TestInstance.start();
    repo = createBareRepository({ 'README.md': 'hello\n', 'docs/guide.md': 'guide\n', 'src/main.c': 'int main(){}\n' });
    instance.gitRepos.set(REPO, repo.bare);
    client = new CoordinatorClient({
      frontendUrl: instance.url,
      frontendPassword: instance.password,
      executorName: 'exec-1',
      queueNames: ['batches'],
      multiQueue: false,
    });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'executor-clone-'));
  });
  after(async () => {
    await instance.close();
    repo.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const job = (id: number, extra: Record<string, unknown> = {}) => ({
    id,
    token: TOKEN,
    queue: 'batches',
    repositoryName: REPO,
    repositoryDirectory: '',
    commit: repo.commit,
    fetchTags: false,
    shallowClone: false,
    sparseCheckout: null as string[] | null,
    ...extra,
  });
  const context = (j: ReturnType<typeof job>): JobLogContext => ({
    client,
    job: j,
    redactor: new Redactor(buildRedactions(instance.password, { [TOKEN]: '[TOKEN]' })),
    flushIntervalMs: 50,
  });

  it('clones the commit with one log entry per git command, adding the job headers at the proxy', async () => {
    const j = job(101, { repositoryDirectory: 'repo' });
    const workspace = fs.mkdtempSync(path.join(root, 'ws-'));
    const signal = new AbortController().signal;
    const repoDir = await cloneRepository(context(j), j, { workspaceDir: workspace, frontendUrl: instance.url, jobHeaders: client.jobHeaders(j) }, signal);
    assert.equal(repoDir, path.join(workspace, 'repo'));
    assert.equal(fs.readFileSync(path.join(repoDir, 'README.md'), 'utf8'), 'hello\n');
    const head = execFileSync('git', ['-C', repoDir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    assert.equal(head, repo.commit);
    assert.equal(execFileSync('git', ['-C', repoDir, 'remote', 'get-url', 'origin'], { encoding: 'utf8' }).trim(), REPO);

    const entries = instance.logs.get(101)!;
    assert.deepEqual(entries.map((e) => e.key), [
      'setup.git.init',
      'setup.git.add-remote',
      'setup.git.disable-gc',
      'setup.git.fetch',
      'setup.git.checkout',
      'setup.git.set-remote',
    ]);
    assert.ok(entries.every((e) => e.exitCode === 0 && typeof e.durationMs === 'number'), JSON.stringify(entries));
    const fetchEntry = entries[3]!;
    assert.deepEqual(fetchEntry.command!.slice(3), ['-c', 'protocol.version=2', 'fetch', '--progress', '--no-recurse-submodules', '--end-of-options', 'origin', repo.commit]);
    assert.match(fetchEntry.out, /^stderr: /m);

    const gitRequests = instance.requests.filter((r) => r.path.startsWith('/.executors/git/'));
    assert.ok(gitRequests.some((r) => r.path === `/.executors/git/${REPO}/info/refs` && r.query === '?service=git-upload-pack'));
    assert.ok(gitRequests.some((r) => r.path === `/.executors/git/${REPO}/git-upload-pack`));
    for (const r of gitRequests) {
      assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
      assert.equal(r.headers['x-sourcegraph-actor-uid'], 'internal');
      assert.equal(r.headers['x-sourcegraph-job-id'], '101');
      assert.equal(r.headers['x-sourcegraph-executor-name'], 'exec-1');
      assert.equal(r.headers['git-protocol'], 'version=2');
    }

    // The token lives only in the proxy's memory: not in git's config, not in any logged command or output.
    const gitDir = path.join(repoDir, '.git');
    for (const file of ['config', 'FETCH_HEAD']) {
      const p = path.join(gitDir, file);
      if (fs.existsSync(p)) assert.ok(!fs.readFileSync(p, 'utf8').includes(TOKEN), file);
    }
    assert.ok(!JSON.stringify(entries).includes(TOKEN));
    const addRemote = entries[1]!.command!;
    assert.match(addRemote.at(-1)!, new RegExp(`^http://127\\.0\\.0\\.1:\\d+/${REPO.replaceAll('.', '\\.')}$`), 'no credentials in the remote URL');
  });

  it('supports shallow, tag and sparse fetches', async () => {
    const j = job(102, { shallowClone: true, fetchTags: true, sparseCheckout: ['docs/*'] });
    const workspace = fs.mkdtempSync(path.join(root, 'ws-'));
    await cloneRepository(context(j), j, { workspaceDir: workspace, frontendUrl: instance.url, jobHeaders: client.jobHeaders(j) }, new AbortController().signal);
    assert.ok(fs.existsSync(path.join(workspace, 'docs/guide.md')));
    assert.ok(!fs.existsSync(path.join(workspace, 'src/main.c')), 'sparse checkout must leave other paths out');
    assert.equal(execFileSync('git', ['-C', workspace, 'rev-list', '--count', 'HEAD'], { encoding: 'utf8' }).trim(), '1');
    const keys = instance.logs.get(102)!.map((e) => e.key);
    assert.deepEqual(keys.slice(3, 6), ['setup.git.fetch', 'setup.git.sparse-checkout-config', 'setup.git.sparse-checkout-set']);
    const fetchArgs = instance.logs.get(102)![3]!.command!;
    assert.ok(fetchArgs.includes('--tags') && fetchArgs.includes('--depth=1') && fetchArgs.includes('--filter=blob:none'));
    assert.ok(!fetchArgs.includes('--no-tags'));
  });

  it('builds --no-tags for shallow clones without tags', () => {
    const commands = gitCloneCommands({ repositoryName: 'r', commit: 'c'.repeat(40), fetchTags: false, shallowClone: true, sparseCheckout: null }, '/w', 'http://x/r', { path: process.env.PATH, home: process.env.HOME });
    assert.deepEqual(commands.find((c) => c.key === 'setup.git.fetch')!.argv, [
      'git', '-C', '/w', '-c', 'protocol.version=2', 'fetch', '--progress', '--no-recurse-submodules', '--no-tags', '--depth=1', '--end-of-options', 'origin', 'c'.repeat(40),
    ]);
    const env = commands[0]!.env;
    assert.deepEqual(Object.keys(env).filter((k) => !/^GIT_CONFIG_(KEY|VALUE)_\d+$/.test(k)).sort(), [...(process.env.HOME ? ['HOME'] : []), 'GIT_CONFIG_COUNT', 'GIT_CONFIG_GLOBAL', 'GIT_CONFIG_NOSYSTEM', 'GIT_LFS_SKIP_SMUDGE', 'GIT_TERMINAL_PROMPT', 'PATH'].sort());
    assert.equal(env.GIT_TERMINAL_PROMPT, '0');
    assert.equal(env.GIT_LFS_SKIP_SMUDGE, '1');
  });

  it('fails with the failing step named when the commit does not exist', async () => {
    const j = job(103, { commit: '0123456789012345678901234567890123456789' });
    const workspace = fs.mkdtempSync(path.join(root, 'ws-'));
    await assert.rejects(
      cloneRepository(context(j), j, { workspaceDir: workspace, frontendUrl: instance.url, jobHeaders: client.jobHeaders(j) }, new AbortController().signal),
      (err: unknown) => err instanceof SetupCommandError && err.key === 'setup.git.fetch' && err.exitCode !== 0 && /^failed setup\.git\.fetch: exit code \d+$/.test(err.message),
    );
    assert.equal(instance.logs.get(103)!.at(-1)!.key, 'setup.git.fetch');
  });

  it('refuses other repositories, unknown endpoints and path tricks with 403', async () => {
    const proxy = await startGitProxy({ frontendUrl: instance.url, repositoryName: REPO, jobHeaders: client.jobHeaders(job(104)) });
    try {
      const before = instance.requests.length;
      const [name, value] = proxy.gitConfig['http.extraHeader']!.split(': ') as [string, string];
      const rawGet = (base: string, rawPath: string) => rawGetStatus(base, rawPath, { [name]: value });
      assert.equal(await rawGet(proxy.url, '/github.com/other/repo/info/refs?service=git-upload-pack'), 403);
      assert.equal(await rawGet(proxy.url, `/${REPO}/../other/info/refs?service=git-upload-pack`), 403);
      assert.equal(await rawGet(proxy.url, `/${REPO}/%2e%2e/other/info/refs`), 403);
      assert.equal(await rawGet(proxy.url, `/${REPO}/objects/info/packs`), 403);
      assert.equal(await rawGet(proxy.url, `/${REPO}.evil/info/refs`), 403);
      assert.equal(instance.requests.length, before, 'refused requests must not reach the instance');
      assert.equal(await rawGet(proxy.url, `/${REPO}/info/refs?service=git-upload-pack`), 200);
      assert.equal(instance.requests.length, before + 1);
    } finally {
      await proxy.close();
    }
  });

  it('rejects a repository directory outside the workspace', async () => {
    const j = job(105, { repositoryDirectory: '../escape' });
    const workspace = fs.mkdtempSync(path.join(root, 'ws-'));
    await assert.rejects(
      cloneRepository(context(j), j, { workspaceDir: workspace, frontendUrl: instance.url, jobHeaders: client.jobHeaders(j) }, new AbortController().signal),
      /refusing to write outside of working directory/,
    );
  });
});
