import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { EXTENSIONS_HEADER, WAIT_HEADER } from '@sandfleet/protocol';

/**
 * A small, real HTTP server on 127.0.0.1 that answers the executor API the way a Sourcegraph
 * instance does (queue operations under /.executors/queue/, files, git, `token-executor` auth),
 * records every request, and serves git smart HTTP for registered repositories by running
 * `git upload-pack --stateless-rpc` on a real bare repository.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface LogEntryRecord {
  key: string;
  command?: string[];
  startTime: string;
  out: string;
  exitCode?: number | null;
  durationMs?: number | null;
  appendedSeqs: number[];
  updates: number;
}

export interface TestInstanceOptions {
  password?: string;
  /** Offered in X-Sandfleet-Extensions on every answer. */
  extensions?: string[];
}

export class TestInstance {
  readonly password: string;
  extensions: string[];
  readonly requests: RecordedRequest[] = [];
  readonly queued: any[] = [];
  /** jobId → entries (entry IDs are 1-based indexes). */
  readonly logs = new Map<number, LogEntryRecord[]>();
  readonly marks: { op: string; jobId: number; errorMessage?: string; headers: http.IncomingHttpHeaders }[] = [];
  /** Heartbeat IDs the instance answers as canceled. */
  readonly cancelIds = new Set<string>();
  /** Spell the heartbeat answer's keys as a Go struct without json tags would (`KnownIDs`, `CancelIDs`). */
  goStyleHeartbeatKeys = false;
  /** Heartbeat IDs the instance no longer knows (reset / given to someone else). */
  readonly forgottenIds = new Set<string>();
  /** repository name → bare repository path. */
  readonly gitRepos = new Map<string, string>();
  /** `<bucket>/<key>` → content. */
  readonly files = new Map<string, Buffer>();
  /** Status to answer for an operation instead of handling it (e.g. updateExecutionLogEntry → 500). */
  readonly failOperations = new Map<string, number>();
  #server: http.Server;
  #listeners = new Set<() => void>();
  url = '';

  private constructor(options: TestInstanceOptions) {
    this.password = options.password ?? 'test-access-token-0123456789';
    this.extensions = options.extensions ?? [];
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err) => {
        // A failure after the answer began (a client that went away) can only end the connection.
        if (res.headersSent) res.destroy();
        else res.writeHead(500).end(String(err));
      });
    });
  }

  static async start(options: TestInstanceOptions = {}): Promise<TestInstance> {
    const instance = new TestInstance(options);
    await new Promise<void>((resolve) => instance.#server.listen(0, '127.0.0.1', resolve));
    instance.url = `http://127.0.0.1:${(instance.#server.address() as AddressInfo).port}`;
    return instance;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  enqueue(job: Record<string, unknown>): void {
    this.queued.push({ token: `job-token-${job.id}`, repositoryName: '', repositoryDirectory: '', commit: '', files: {}, ...job });
    this.#changed();
  }

  requestsTo(pathSuffix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.endsWith(pathSuffix));
  }

  /** Resolves when `predicate` holds, re-checked after every request; rejects after `timeoutMs`. */
  waitFor<T>(what: string, predicate: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = predicate();
        if (value !== undefined && value !== false) {
          this.#listeners.delete(check);
          clearTimeout(timer);
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(new Error(`timed out waiting for ${what}; last requests: ${this.requests.slice(-5).map((r) => `${r.method} ${r.path}`).join(', ')}`));
      }, timeoutMs);
      this.#listeners.add(check);
      check();
    });
  }

  #changed(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const raw = await readBody(req);
    const isGit = url.pathname.startsWith('/.executors/git/');
    let body: any = raw.length > 0 && !isGit ? safeJson(raw.toString('utf8')) : undefined;
    const record: RecordedRequest = { method: req.method ?? '', path: url.pathname, query: url.search, headers: req.headers, body };
    this.requests.push(record);
    if (this.extensions.length > 0) res.setHeader(EXTENSIONS_HEADER, this.extensions.join(', '));
    try {
      await this.#route(req, res, url, raw, body);
    } finally {
      this.#changed();
    }
  }

  async #route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: Buffer, body: any): Promise<void> {
    const path = url.pathname;
    if (path === '/.executors/test/auth') {
      if (req.headers.authorization !== `token-executor ${this.password}`) return void res.writeHead(401).end();
      return void res.writeHead(200).end('ok');
    }
    if (path.startsWith('/.executors/git/')) return this.#git(req, res, url, raw);
    if (path.startsWith('/.executors/files/')) {
      const content = this.files.get(path.slice('/.executors/files/'.length));
      if (!content) return void res.writeHead(404).end();
      return void res.writeHead(200).end(req.method === 'HEAD' ? undefined : content);
    }
    const m = /^\/\.executors\/queue\/(?:([^/]+)\/)?([A-Za-z]+)$/.exec(path);
    if (!m) return void res.writeHead(404).end('404 page not found\n');
    const op = m[2]!;
    const failStatus = this.failOperations.get(op);
    if (failStatus) return void res.writeHead(failStatus).end(JSON.stringify({ error: `forced ${op} failure` }));
    if (op === 'dequeue' || op === 'heartbeat') {
      if (req.headers.authorization !== `token-executor ${this.password}`) return void res.writeHead(401).end();
    }
    switch (op) {
      case 'dequeue': {
        const wait = Number(req.headers[WAIT_HEADER.toLowerCase()] ?? 0);
        const deadline = Date.now() + (this.extensions.includes('long-poll') ? wait * 1000 : 0);
        while (this.queued.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        const job = this.queued.shift();
        if (!job) return void res.writeHead(204).end();
        const multi = m[1] === undefined;
        return json(res, 200, multi ? { ...job, queue: job.queue ?? body.queues[0] } : job);
      }
      case 'heartbeat': {
        const ids: string[] = body.jobIdsByQueue
          ? body.jobIdsByQueue.flatMap((q: any) => q.jobIds.map((id: string) => `${id}-${q.queueName}`))
          : (body.jobIds ?? []).map(String);
        const known = ids.filter((id) => !this.forgottenIds.has(id));
        const cancel = known.filter((id) => this.cancelIds.has(id));
        return json(res, 200, this.goStyleHeartbeatKeys ? { knownIDs: known, CancelIDs: cancel } : { knownIds: known, cancelIds: cancel });
      }
      case 'addExecutionLogEntry': {
        const entries = this.logs.get(body.jobId) ?? [];
        this.logs.set(body.jobId, entries);
        entries.push({ key: body.key, command: body.command, startTime: body.startTime, out: body.out ?? '', exitCode: body.exitCode, durationMs: body.durationMs, appendedSeqs: [], updates: 0 });
        return json(res, 200, entries.length);
      }
      case 'updateExecutionLogEntry': {
        const entry = this.logs.get(body.jobId)?.[body.entryId - 1];
        if (!entry) return json(res, 500, { error: 'unknown job' });
        Object.assign(entry, { out: body.out ?? '', exitCode: body.exitCode, durationMs: body.durationMs, command: body.command });
        entry.updates++;
        return void res.writeHead(204).end();
      }
      case 'appendExecutionLog': {
        const entry = this.logs.get(body.jobId)?.[body.entryId - 1];
        if (!entry) return json(res, 500, { error: 'unknown job' });
        if (!entry.appendedSeqs.includes(body.seq)) {
          entry.appendedSeqs.push(body.seq);
          entry.out += body.out ?? '';
          if (body.exitCode !== undefined && body.exitCode !== null) entry.exitCode = body.exitCode;
          if (body.durationMs !== undefined && body.durationMs !== null) entry.durationMs = body.durationMs;
        }
        return void res.writeHead(204).end();
      }
      case 'markComplete':
      case 'markErrored':
      case 'markFailed':
        this.marks.push({ op, jobId: body.jobId, errorMessage: body.errorMessage, headers: req.headers });
        return void res.writeHead(204).end();
      default:
        return void res.writeHead(404).end('404 page not found\n');
    }
  }

  /** Git smart HTTP (protocol v0 and v2) backed by `git upload-pack --stateless-rpc`. */
  async #git(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: Buffer): Promise<void> {
    const m = /^\/\.executors\/git\/(.+)\/(info\/refs|git-upload-pack)$/.exec(url.pathname);
    const repoPath = m ? this.gitRepos.get(m[1]!) : undefined;
    if (!m || !repoPath) return void res.writeHead(404).end('no such repository\n');
    if (!String(req.headers.authorization ?? '').startsWith('Bearer ')) return void res.writeHead(401).end('invalid token\n');
    const protocol = String(req.headers['git-protocol'] ?? '');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(protocol ? { GIT_PROTOCOL: protocol } : {}) };
    if (m[2] === 'info/refs') {
      const advertisement = await runGit(['upload-pack', '--stateless-rpc', '--advertise-refs', repoPath], env, Buffer.alloc(0));
      res.writeHead(200, { 'Content-Type': 'application/x-git-upload-pack-advertisement', 'Cache-Control': 'no-cache' });
      // Protocol v2 answers have no service preamble (as git http-backend does).
      if (!protocol.includes('version=2')) res.write(pktLine('# service=git-upload-pack\n') + '0000');
      return void res.end(advertisement);
    }
    const input = req.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw) : raw;
    const result = await runGit(['upload-pack', '--stateless-rpc', repoPath], env, input);
    res.writeHead(200, { 'Content-Type': 'application/x-git-upload-pack-result', 'Cache-Control': 'no-cache' });
    res.end(result);
  }
}

function pktLine(text: string): string {
  return (text.length + 4).toString(16).padStart(4, '0') + text;
}

function runGit(args: string[], env: Record<string, string>, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`git ${args.join(' ')}: ${code} ${err}`))));
    // git may exit before reading all of its input (a request it rejects, or one it answers
    // early): the write then fails with EPIPE, and the exit status above says what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(JSON.stringify(value));
}

/**
 * The environment of an in-process executor agent serving `instance` on the `batches` queue with the
 * shell runtime, polling and heartbeating fast enough for tests.
 */
export function shellAgentEnv(instance: TestInstance, workspaceDir: string, executorName: string): Record<string, string> {
  return {
    EXECUTOR_FRONTEND_URL: instance.url,
    EXECUTOR_FRONTEND_PASSWORD: instance.password,
    EXECUTOR_QUEUE_NAME: 'batches',
    EXECUTOR_QUEUE_POLL_INTERVAL: '50ms',
    EXECUTOR_HEARTBEAT_INTERVAL: '100ms',
    EXECUTOR_RUNTIME: 'shell',
    EXECUTOR_WORKSPACE_DIR: workspaceDir,
    EXECUTOR_NAME: executorName,
  };
}
