/**
 * Hostile input for host git: commits that are options or shell, a repository or a root
 * configuration that would run programs on the host, and other local processes using the clone's
 * git proxy.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildRedactions, CoordinatorClient, cloneRepository, GIT_PROXY_SECRET_HEADER, InvalidCommitError, Redactor, startGitProxy, type JobLogContext } from '../../src/index.js';
import { createBareRepository, makeTempDir, rawGetStatus, removeTempDir, TestInstance } from '@sandfleet/test-helpers';

const REPO = 'github.com/sourcegraph/hostile';

describe('host git against hostile jobs', () => {
  let instance: TestInstance;
  let repo: ReturnType<typeof createBareRepository>;
  let client: CoordinatorClient;
  let root: string;

  before(async () => {
    instance = await TestInstance.start();
    repo = createBareRepository({ 'README.md': 'hello\n' });
    instance.gitRepos.set(REPO, repo.bare);
    client = new CoordinatorClient({ frontendUrl: instance.url, frontendPassword: instance.password, executorName: 'exec-1', queueNames: ['batches'], multiQueue: false });
    root = makeTempDir('executor-hostile-git-');
  });
  after(async () => {
    await instance.close();
    repo.cleanup();
    removeTempDir(root);
  });

  const job = (id: number, commit: string) => ({
    id,
    token: `job-token-${id}`,
    queue: 'batches',
    repositoryName: REPO,
    repositoryDirectory: '',
    commit,
    fetchTags: false,
    shallowClone: false,
    sparseCheckout: null as string[] | null,
  });
  const context = (j: ReturnType<typeof job>): JobLogContext => ({ client, job: j, redactor: new Redactor(buildRedactions(instance.password, {})), flushIntervalMs: 50 });

  async function healthy(): Promise<void> {
    // The instance still answers its executors.
    await client.ping();
  }

  for (const [n, commit] of [
    [1, '--upload-pack=touch MARKER'],
    [2, 'HEAD;touch MARKER'],
    [3, `${'a'.repeat(39)} --upload-pack=touch MARKER`],
    [4, 'HEAD'],
  ] as const) {
    it(`refuses the commit ${JSON.stringify(commit)} before any git command runs`, async () => {
      const marker = path.join(root, `marker-${n}`);
      const j = job(200 + n, commit.replace('MARKER', marker));
      const workspace = fs.mkdtempSync(path.join(root, 'ws-'));
      await assert.rejects(cloneRepository(context(j), j, { workspaceDir: workspace, frontendUrl: instance.url, jobHeaders: client.jobHeaders(j) }, new AbortController().signal), InvalidCommitError);
      assert.equal(instance.logs.get(j.id), undefined, 'no git command ran');
      assert.equal(fs.existsSync(marker), false);
      assert.deepEqual(fs.readdirSync(workspace), []);
      await healthy();
    });
  }

  it('ignores the host user\'s git configuration and hooks', async () => {
    const home = fs.mkdtempSync(path.join(root, 'home-'));
    const hooks = path.join(home, 'hooks');
    const marker = path.join(root, 'hook-ran');
    fs.mkdirSync(hooks);
    for (const hook of ['post-checkout', 'reference-transaction', 'pre-auto-gc']) {
      fs.writeFileSync(path.join(hooks, hook), `#!/bin/sh\necho ${hook} >> ${marker}\n`, { mode: 0o755 });
    }
    fs.writeFileSync(path.join(home, '.gitconfig'), `[core]\n\thooksPath = ${hooks}\n`);
    const j = job(210, repo.commit);
    const workspace = fs.mkdtempSync(path.join(root, 'ws-'));
    await cloneRepository(context(j), j, { workspaceDir: workspace, frontendUrl: instance.url, jobHeaders: client.jobHeaders(j), host: { path: process.env.PATH, home } }, new AbortController().signal);
    assert.equal(fs.readFileSync(path.join(workspace, 'README.md'), 'utf8'), 'hello\n');
    assert.equal(fs.existsSync(marker), false, fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : '');
    await healthy();
  });

  it('answers only the clone it serves: another local process gets 403 and never reaches the instance', async () => {
    const proxy = await startGitProxy({ frontendUrl: instance.url, repositoryName: REPO, jobHeaders: client.jobHeaders(job(220, repo.commit)) });
    try {
      const before = instance.requests.length;
      const refs = `/${REPO}/info/refs?service=git-upload-pack`;
      assert.equal(await rawGetStatus(proxy.url, refs), 403);
      assert.equal(await rawGetStatus(proxy.url, refs, { [GIT_PROXY_SECRET_HEADER]: 'guessed' }), 403);
      assert.equal(instance.requests.length, before, 'refused requests must not reach the instance');
      const [name, value] = proxy.gitConfig['http.extraHeader']!.split(': ') as [string, string];
      assert.equal(await rawGetStatus(proxy.url, refs, { [name]: value }), 200);
      const forwarded = instance.requests.at(-1)!;
      assert.equal(forwarded.headers[GIT_PROXY_SECRET_HEADER], undefined, 'the secret is not forwarded upstream');
    } finally {
      await proxy.close();
    }
    await healthy();
  });
});
