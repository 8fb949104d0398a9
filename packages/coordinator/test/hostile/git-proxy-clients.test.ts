import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, startCoordinatorProcess, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { createGitRepository, makeTempDir, removeTempDir, waitFor, type GitRepository } from '@sandfleet/test-helpers';

const run = promisify(execFile);
const REPO = 'example.com/big';

/** Incompressible content: the pack is about as large as the files (~18 MB). */
function randomFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < 4; i++) files[`blob-${i}.txt`] = crypto.randomBytes(4.5 * 1024 * 1024).toString('base64');
  return files;
}

function pktLine(text: string): string {
  return (text.length + 4).toString(16).padStart(4, '0') + text;
}

/**
 * Starts a clone's pack request on a raw socket and resolves once `minBytes` of the answer came;
 * the caller then drops or stalls the connection.
 */
function startPackRequest(url: string, commit: string, minBytes: number): Promise<{ socket: net.Socket; received: number }> {
  const { hostname, port } = new URL(url);
  const body = pktLine(`want ${commit} ofs-delta\n`) + '0000' + pktLine('done\n');
  const head = [
    `POST /.executors/git/${REPO}/git-upload-pack HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    `Authorization: token-executor ${ACCESS_TOKEN}`,
    'Content-Type: application/x-git-upload-pack-request',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    '',
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received >= minBytes) {
        socket.off('data', onData);
        socket.pause();
        resolve({ socket, received });
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`connection closed after ${received} bytes`)));
    socket.write(head + body);
  });
}

async function healthy(url: string): Promise<boolean> {
  const res = await fetch(`${url}/healthz`);
  return res.status === 200 && (await res.text()) === 'ok';
}

async function cloneWorks(url: string, commit: string): Promise<void> {
  const dir = makeTempDir('sandfleet-clone-');
  try {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
    await run('git', ['-c', `http.extraHeader=Authorization: token-executor ${ACCESS_TOKEN}`, 'clone', '-q', `${url}/.executors/git/${REPO}`, path.join(dir, 'w')], { env });
    const head = (await run('git', ['-C', path.join(dir, 'w'), 'rev-parse', 'HEAD'], { env })).stdout.trim();
    assert.equal(head, commit);
  } finally {
    removeTempDir(dir);
  }
}

/** git processes the coordinator runs (upload-pack children). */
function gitChildren(pid: number): number[] {
  const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.filter((child) => {
    try {
      return fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('upload-pack');
    } catch {
      return false;
    }
  });
}

function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return Number(kb) * 1024;
}

for (const backend of testBackends()) {
  describe(`git proxy against hostile clients (${backend})`, () => {
    let coordinator: CoordinatorProcess;
    let repo: GitRepository;
    before(async () => {
      repo = createGitRepository(randomFiles());
      // Random blobs have no deltas worth searching for; the search alone would take seconds.
      await run('git', ['-C', repo.path, 'config', 'pack.window', '0']);
      coordinator = await startCoordinatorProcess(backend);
      const added = await coordinator.api('POST', '/api/repositories', { name: REPO, source: repo.path });
      assert.equal(added.status, 201, JSON.stringify(added.body));
    });
    after(async () => {
      await coordinator?.stop();
      repo?.cleanup();
    });

    it('survives clients that drop the connection mid-pack, and kills their git', async () => {
      for (let i = 0; i < 5; i++) {
        const { socket } = await startPackRequest(coordinator.url, repo.commit, 64 * 1024);
        socket.destroy();
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(await healthy(coordinator.url), coordinator.output());
      await waitFor('the dropped clones\' git processes to end', () => gitChildren(coordinator.child.pid!).length === 0, 30_000);
      await cloneWorks(coordinator.url, repo.commit);
      assert.doesNotMatch(coordinator.output(), /uncaught/);
    });

    it('holds back git for a client that stops reading, without buffering the pack', async () => {
      const pid = coordinator.child.pid!;
      const before = rssBytes(pid);
      const { socket } = await startPackRequest(coordinator.url, repo.commit, 16 * 1024);
      try {
        // Time enough for git to write the whole pack, were nothing holding it back.
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        assert.equal(gitChildren(pid).length, 1, 'git waits for the client instead of finishing');
        const grown = rssBytes(pid) - before;
        assert.ok(grown < 10 * 1024 * 1024, `coordinator memory grew by ${grown} bytes`);
        assert.ok(await healthy(coordinator.url));
      } finally {
        socket.destroy();
      }
      await waitFor('the stalled clone\'s git to end', () => gitChildren(pid).length === 0, 30_000);
      await cloneWorks(coordinator.url, repo.commit);
    });
  });
}
