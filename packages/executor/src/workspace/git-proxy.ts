import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ACTOR_UID_HEADER, executorRoutes } from '@sandfleet/protocol';

/**
 * A per-job reverse proxy on 127.0.0.1 that git clones through (docs/protocol.md, "Workspace and clone"). It adds the job-token
 * headers to every request, so the token never appears in a git command line, `.git/config` or a
 * log; and it serves only the job's own repository (anything else is 403). Any local process can
 * connect to a loopback port, so it also answers only requests that carry a random per-proxy secret
 * header, which our git commands get through their environment (`gitConfig`), never argv.
 */
export interface GitProxyOptions {
  /** Instance base URL, e.g. `https://sourcegraph.example.com`. */
  frontendUrl: string;
  /** The only repository this proxy serves. */
  repositoryName: string;
  /** Headers that authenticate the job: Authorization, X-Sourcegraph-Job-ID, X-Sourcegraph-Executor-Name. */
  jobHeaders: Readonly<Record<string, string>>;
}

export interface GitProxy {
  /** `http://127.0.0.1:<port>`; the clone URL is `<url>/<repositoryName>`. */
  readonly url: string;
  /** Git configuration that adds the proxy's secret header (for gitEnv). */
  readonly gitConfig: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

// The two smart-HTTP endpoints a fetch uses (protocol v0 and v2 alike).
/** The header that proves a request comes from the clone this proxy serves. */
export const GIT_PROXY_SECRET_HEADER = 'x-sandfleet-git-proxy-secret';

const GIT_ENDPOINTS = new Set(['info/refs', 'git-upload-pack']);

// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded; Host is set for the upstream.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host',
]);

export async function startGitProxy(options: GitProxyOptions): Promise<GitProxy> {
  const upstreamBase = new URL(`${options.frontendUrl}${executorRoutes.git(options.repositoryName)}`);
  const transport = upstreamBase.protocol === 'https:' ? https : http;
  const repoPrefix = `/${options.repositoryName}/`;
  const secret = randomBytes(32).toString('hex');

  const server = http.createServer((req, res) => {
    if (!hasSecret(req.headers[GIT_PROXY_SECRET_HEADER], secret)) {
      req.resume();
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' }).end('forbidden: not the clone this proxy serves\n');
      return;
    }
    const incoming = new URL(req.url ?? '/', 'http://127.0.0.1');
    // Compare the decoded path and rebuild the upstream path from known parts, so neither
    // percent-encoding nor `..` can steer the request to another repository.
    let pathname: string;
    try {
      pathname = decodeURIComponent(incoming.pathname);
    } catch {
      pathname = '';
    }
    const endpoint = pathname.startsWith(repoPrefix) ? pathname.slice(repoPrefix.length) : undefined;
    if (endpoint === undefined || !GIT_ENDPOINTS.has(endpoint)) {
      req.resume();
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' }).end('forbidden: this proxy serves only the job repository\n');
      return;
    }
    const target = new URL(`${upstreamBase.pathname}/${endpoint}${incoming.search}`, upstreamBase);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && name !== GIT_PROXY_SECRET_HEADER && value !== undefined) headers[name] = value;
    }
    Object.assign(headers, options.jobHeaders, { [ACTOR_UID_HEADER]: 'internal' });
    const upstream = transport.request(target, { method: req.method, headers }, (upstreamRes) => {
      const responseHeaders: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(upstreamRes.headers)) {
        if (!HOP_BY_HOP.has(name) && value !== undefined) responseHeaders[name] = value;
      }
      res.writeHead(upstreamRes.statusCode ?? 502, responseHeaders);
      upstreamRes.pipe(res);
      upstreamRes.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`git proxy: ${err.message}\n`);
    });
    req.pipe(upstream);
    res.on('close', () => upstream.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    gitConfig: { 'http.extraHeader': `${GIT_PROXY_SECRET_HEADER}: ${secret}` },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function hasSecret(value: string | string[] | undefined, secret: string): boolean {
  if (typeof value !== 'string' || value.length !== secret.length) return false;
  return timingSafeEqual(Buffer.from(value), Buffer.from(secret));
}
