import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ACCESS_TOKEN, ADMIN_TOKEN, startCoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { buildRedactions, CoordinatorClient, Redactor, runHostCommand, type ExecutorJob, type JobLogContext, type LogClient } from '../../src/index.js';


export interface StoredEntry {
  key: string;
  out: string;
  exitCode?: number | null;
}

/** Counts the log writes a client makes, by operation. */
export class CountingLogClient implements LogClient {
  readonly calls = new Map<string, number>();
  /** The seq of every append call, in order. */
  readonly appendSeqs: number[] = [];
  constructor(readonly inner: CoordinatorClient) {}
  #count(op: string) {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
  }
  supports(extension: string) {
    return this.inner.supports(extension);
  }
  addExecutionLogEntry(...args: Parameters<CoordinatorClient['addExecutionLogEntry']>) {
    this.#count('addExecutionLogEntry');
    return this.inner.addExecutionLogEntry(...args);
  }
  updateExecutionLogEntry(...args: Parameters<CoordinatorClient['updateExecutionLogEntry']>) {
    this.#count('updateExecutionLogEntry');
    return this.inner.updateExecutionLogEntry(...args);
  }
  appendEncodedExecutionLog(...args: Parameters<CoordinatorClient['appendEncodedExecutionLog']>) {
    this.#count('appendExecutionLog');
    this.appendSeqs.push(args[1].seq);
    return this.inner.appendEncodedExecutionLog(...args);
  }
}

/**
 * The real coordinator (HTTP on loopback, PostgreSQL) and a real executor client: a job is enqueued
 * through the user API, dequeued, its step run on the host as one log entry, and its outcome marked,
 * as the job runner does it.
 */
export async function startLogCoordinator(env: Record<string, string> = {}) {
  const coordinator = await startCoordinatorServer('postgres', env);
  const client = new CoordinatorClient({
    frontendUrl: coordinator.url,
    frontendPassword: ACCESS_TOKEN,
    executorName: 'hostile-log-executor',
    queueNames: ['batches'],
    multiQueue: false,
    retryAttempts: 2,
    retryBaseDelayMs: 10,
  });
  await client.ping();
  const admin = coordinator.admin;

  /** Runs `script` (sh -c) as the only step of a new job; marks it complete or failed as the runner does. */
  async function runStep(script: string, options: { maxLogBytes?: number } = {}) {
    const { id } = await admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'alpine', commands: ['true'] }] });
    const job: ExecutorJob | undefined = await client.dequeue();
    if (!job || job.id !== id) throw new Error(`dequeued ${job?.id}, expected ${id}`);
    const logClient = new CountingLogClient(client);
    const ctx: JobLogContext = {
      client: logClient,
      job,
      redactor: new Redactor(buildRedactions(ACCESS_TOKEN, {}, [job.token])),
      flushIntervalMs: 100,
      maxLogBytes: options.maxLogBytes,
    };
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-hostile-step-'));
    let outcome: 'completed' | 'failed';
    let failure = '';
    try {
      const result = await runHostCommand(ctx, { key: 'step.shell.0', argv: ['/bin/sh', '-c', script], cwd: workDir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, new AbortController().signal);
      outcome = result.exitCode === 0 ? 'completed' : 'failed';
    } catch (err) {
      outcome = 'failed';
      failure = err instanceof Error ? err.message : String(err);
    } finally {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
    if (outcome === 'completed') await client.markComplete(job);
    else await client.markFailed(job, failure || 'step failed');
    const view = await admin('GET', `/api/jobs/${id}`);
    // The job view shows only the start of each entry; the whole output comes from the text download.
    const [entry] = view.executionLogs as StoredEntry[];
    const text = await (await fetch(`${coordinator.url}/api/jobs/${id}/log.txt`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    const entries: StoredEntry[] = entry ? [{ ...entry, out: text.slice(text.indexOf('\n') + 1) }] : [];
    return { view, entries, calls: logClient.calls, appendSeqs: logClient.appendSeqs, failure };
  }

  return {
    url: coordinator.url,
    runStep,
    close: () => coordinator.close(),
  };
}
