import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendName as TestBackend } from '@sandfleet/db';
import { createTestDatabase } from '@sandfleet/db/testing';

/**
 * Real processes for end-to-end tests: a `sandfleet serve` on a fresh test database and any number
 * of `executor run` processes talking to it over HTTP on loopback.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '../../../..');
const SANDFLEET_BIN = path.join(REPO_ROOT, 'packages/coordinator/bin/sandfleet.js');
const EXECUTOR_BIN = path.join(REPO_ROOT, 'packages/executor/bin/executor.js');

export const ACCESS_TOKEN = 'e2e-access-token-0123456789abcdef';
export const ADMIN_TOKEN = 'e2e-admin-token-0123456789';

export interface CoordinatorProcess {
  url: string;
  dataDir: string;
  child: ChildProcess;
  output: () => string;
  api: <T = any>(method: string, path: string, body?: unknown) => Promise<{ status: number; body: T }>;
  stop: () => Promise<void>;
}

export async function startCoordinator(backend: TestBackend, env: Record<string, string> = {}): Promise<CoordinatorProcess> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-e2e-'));
  const siteConfig = path.join(dataDir, 'site-config.json');
  fs.writeFileSync(siteConfig, JSON.stringify({ 'executors.accessToken': ACCESS_TOKEN }));
  const database = await createTestDatabase(backend);
  const child = spawn(process.execPath, [SANDFLEET_BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--site-config', siteConfig], {
    env: { PATH: process.env.PATH!, HOME: dataDir, SANDFLEET_ADMIN_TOKEN: ADMIN_TOKEN, SANDFLEET_LOG_LEVEL: 'info', ...database.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`coordinator did not start in 60 s:\n${out}`)), 60_000);
    const check = () => {
      const m = /"url":"(http:\/\/[^"]+)","database":"\w+","msg":"coordinator listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`coordinator exited with ${code}:\n${out}`)));
  });
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(url + p, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    url,
    dataDir,
    child,
    output: () => out,
    api,
    async stop() {
      await stopProcess(child);
      await database.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ExecutorProcess {
  child: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export function startExecutor(coordinatorUrl: string, env: Record<string, string> = {}): ExecutorProcess {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-e2e-executor-'));
  const child = spawn(process.execPath, [EXECUTOR_BIN, 'run'], {
    env: {
      PATH: process.env.PATH!,
      HOME: stateDir,
      EXECUTOR_FRONTEND_URL: coordinatorUrl,
      EXECUTOR_FRONTEND_PASSWORD: ACCESS_TOKEN,
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_RUNTIME: 'shell',
      EXECUTOR_QUEUE_POLL_INTERVAL: '200ms',
      EXECUTOR_STATE_DIR: stateDir,
      EXECUTOR_WORKSPACE_DIR: stateDir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  return {
    child,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await stopProcess(child, signal);
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Polls the user API until the job reaches one of `states`. */
export async function waitForJobState(c: CoordinatorProcess, id: number, states: string[], timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < deadline) {
    last = (await c.api('GET', `/api/jobs/${id}`)).body;
    if (states.includes(last.state)) return last;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`job ${id} did not reach ${states.join('|')} in ${timeoutMs} ms; last: ${JSON.stringify(last, null, 2)}`);
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A small real git repository with one commit; returns its path and commit. */
export function createGitRepository(files: Record<string, string>): { path: string; commit: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-e2e-repo-'));
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();
  git('init', '--quiet', '--initial-branch=main');
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  git('add', '.');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '--quiet', '-m', 'test');
  return { path: dir, commit: git('rev-parse', 'HEAD') };
}

/** Minimal executor-protocol client for tests that play an executor by hand. */
export function executorClient(url: string, executorName: string) {
  const post = async (p: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + p, {
      method: 'POST',
      headers: { Authorization: `token-executor ${ACCESS_TOKEN}`, 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, body: json, text };
  };
  const jobHeaders = (job: { id: number; token: string }) => ({
    Authorization: `Bearer ${job.token}`,
    'X-Sourcegraph-Job-ID': String(job.id),
    'X-Sourcegraph-Executor-Name': executorName,
  });
  return {
    heartbeat: (queue: string, jobIds: number[] = []) => post(`/.executors/queue/${queue}/heartbeat`, { executorName, version: 'V2', jobIds }),
    dequeue: (queue: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
      post(`/.executors/queue/${queue}/dequeue`, { executorName, version: '5.3.0', ...extra }, headers),
    jobCall: (queue: string, op: string, job: { id: number; token: string }, body: Record<string, unknown>) =>
      post(`/.executors/queue/${queue}/${op}`, { executorName, jobId: job.id, ...body }, jobHeaders(job)),
    post,
    jobHeaders,
  };
}
