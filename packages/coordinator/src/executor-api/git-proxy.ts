import { spawn, type ChildProcess } from 'node:child_process';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { Hono, type Context } from 'hono';
import { getRepository } from '@sandfleet/db';
import { parseGitPath } from '@sandfleet/protocol';
import type { AppDeps } from '../deps.js';
import { jobTokenAuth, type ExecutorApiEnv } from './auth.js';
import { textError } from '../http/errors.js';
import { childOutputStream } from '../http/child-stream.js';

/**
 * Serves registered repositories over git's smart HTTP protocol (fetch only) to a job token of that
 * repository. Sourcegraph proxies to gitserver; we run `git upload-pack` ourselves.
 */
export function gitProxyRoutes(deps: AppDeps): Hono<ExecutorApiEnv> {
  const app = new Hono<ExecutorApiEnv>();
  const repoName = (c: Context) => parseGitPath(c.req.path)?.repositoryName ?? '';
  app.use('*', async (c, next) => {
    if (!parseGitPath(c.req.path)) return textError(c, 404, '404 page not found');
    await next();
  });
  app.use('*', jobTokenAuth(deps.database, deps.executorSecrets, deps.config.executorAccessToken, { kind: 'git', repositoryName: repoName }));

  app.all('*', async (c) => {
    const { repositoryName: name, operation: op } = parseGitPath(c.req.path)!;
    const repo = await getRepository(deps.database.db, name);
    if (!repo) return textError(c, 404, `repository ${name} not found`);
    const protocol = c.req.header('Git-Protocol') ?? '';
    const env = { PATH: deps.config.gitSearchPath, GIT_PROTOCOL: /^[\w=:.-]*$/.test(protocol) ? protocol : '' };

    if (op === 'info/refs') {
      if (c.req.method !== 'GET') return textError(c, 405, 'method not allowed');
      if (c.req.query('service') !== 'git-upload-pack') return textError(c, 403, 'only git-upload-pack is served');
      // Protocol v2 answers with its capability list and no service banner (as git http-backend does).
      const banner = protocol.includes('version=2') ? Buffer.alloc(0) : Buffer.from('001e# service=git-upload-pack\n0000');
      const git = runUploadPack(repo.source, ['--advertise-refs'], env, undefined);
      return streamResponse(c, 'application/x-git-upload-pack-advertisement', git, banner);
    }
    if (c.req.method !== 'POST') return textError(c, 405, 'method not allowed');
    const raw = Readable.fromWeb((c.req.raw.body ?? new Response('').body!) as import('node:stream/web').ReadableStream);
    const body = (c.req.header('Content-Encoding') ?? '').includes('gzip') ? raw.pipe(zlib.createGunzip()) : raw;
    const git = runUploadPack(repo.source, [], env, body);
    // A client that goes away mid-request errors the raw body; pipe() does not forward that.
    raw.on('error', () => git.kill('SIGKILL'));
    return streamResponse(c, 'application/x-git-upload-pack-result', git, Buffer.alloc(0));
  });
  return app;
}

function runUploadPack(repoPath: string, args: string[], env: Record<string, string>, input: Readable | undefined) {
  // allowAnySHA1InWant: executors fetch a commit by id, which need not be a branch tip.
  const child = spawn('git', ['-c', 'uploadpack.allowAnySHA1InWant=true', 'upload-pack', '--stateless-rpc', ...args, repoPath], {
    env,
    stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (input && child.stdin) {
    input.on('error', () => child.kill('SIGKILL'));
    child.stdin.on('error', () => {});
    input.pipe(child.stdin);
  }
  child.stderr?.resume();
  return child;
}

function streamResponse(c: Context, contentType: string, child: ChildProcess, prefix: Buffer): Response {
  return c.body(childOutputStream(child, prefix), 200, { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
}
