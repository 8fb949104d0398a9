/** What the benches share beyond @sandfleet/test-helpers: arguments, percentiles, machine facts, the executor loops. */
import os from 'node:os';
import pg from 'pg';
import type { BackendName } from '@sandfleet/db';
import { executorClient } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN } from '@sandfleet/test-helpers/coordinator';
import { testPostgresAdminUrl } from '@sandfleet/test-helpers/db';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function backendsFromArgs(fallback = 'postgres,pglite'): BackendName[] {
  const arg = process.argv.find((a) => a.startsWith('--backends='));
  return (arg ? arg.slice('--backends='.length) : fallback).split(',') as BackendName[];
}

/** `--name=value` as a number, or the fallback. */
export function numberArg(name: string, fallback: number): number {
  return Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
}

/** `--name=value` as a string, or undefined. */
export function stringArg(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** One line of machine facts, so figures from different machines are not compared blindly. */
export function machineFacts(): string {
  const cpus = os.cpus();
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.platform()} ${os.release()}, node ${process.version}, load ${load}`;
}

/** The version of the PostgreSQL server at SANDFLEET_TEST_PG_URL, for the machine facts. */
export async function postgresVersion(): Promise<string> {
  const client = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await client.connect();
  try {
    return (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  } finally {
    await client.end();
  }
}

/** A fresh database `name` for the duration of `fn`, with a pool on it that `fn` shares. */
export async function withScratchDatabase<T>(name: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(testPostgresAdminUrl());
    url.pathname = `/${name}`;
    const pool = new pg.Pool({ connectionString: url.toString(), max: 20 });
    // Idle clients are cut when the database is dropped; that is no failure of the run.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    try {
      return await fn(pool);
    } finally {
      await pool.end();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

/**
 * `clients` executors each dequeue → markComplete (with the job token) until the queue answers 204;
 * resolves with jobs/s. The queue must hold `expected` jobs and nothing else may take them.
 */
export async function drainQueue(url: string, queue: string, clients: number, expected: number): Promise<number> {
  const executors = Array.from({ length: clients }, (_, n) => executorClient(url, `bench-${n}`, ACCESS_TOKEN));
  // Job-token calls need a known executor: register each first (not timed).
  for (const client of executors) await client.heartbeat(queue);
  const started = performance.now();
  let done = 0;
  await Promise.all(
    executors.map(async (client) => {
      for (;;) {
        const job = await client.dequeue(queue);
        if (job.status === 204) return;
        if (job.status !== 200) throw new Error(`dequeue answered ${job.status}: ${job.text}`);
        const mark = await client.jobCall(queue, 'markComplete', job.body, {});
        if (mark.status !== 204) throw new Error(`markComplete answered ${mark.status}: ${mark.text}`);
        done++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (done !== expected) throw new Error(`completed ${done} of ${expected}`);
  return expected / seconds;
}

/** Job slots per executor in the multi-job dequeue run: C slots are C / 4 executors (at least one). */
export const SLOTS_PER_EXECUTOR = 4;

/**
 * As drainQueue with `slots` job slots in total, held by executors of SLOTS_PER_EXECUTOR slots each
 * that dequeue with the multi-job-dequeue extension: one dequeue asks for as many jobs as the
 * executor has free slots, and each job's markComplete runs on its own. Resolves with jobs/s.
 */
export async function drainQueueMultiJob(url: string, queue: string, slots: number, expected: number): Promise<number> {
  const executorCount = Math.max(1, Math.round(slots / SLOTS_PER_EXECUTOR));
  const executors = Array.from({ length: executorCount }, (_, n) => executorClient(url, `bench-multi-${n}`, ACCESS_TOKEN));
  for (const client of executors) await client.heartbeat(queue);
  const started = performance.now();
  let done = 0;
  await Promise.all(
    executors.map(async (client, n) => {
      const mySlots = Math.floor(slots / executorCount) + (n < slots % executorCount ? 1 : 0);
      const running = new Set<Promise<void>>();
      for (;;) {
        const answer = await client.dequeue(queue, {}, { 'X-Sandfleet-Dequeue-Max-Jobs': String(mySlots - running.size) });
        if (answer.status === 204) break;
        if (answer.status !== 200 || !Array.isArray(answer.body)) throw new Error(`multi-job dequeue answered ${answer.status}: ${answer.text}`);
        for (const job of answer.body as { id: number; token: string }[]) {
          const mark = (async () => {
            const res = await client.jobCall(queue, 'markComplete', job, {});
            if (res.status !== 204) throw new Error(`markComplete answered ${res.status}: ${res.text}`);
            done++;
          })();
          running.add(mark);
          void mark.finally(() => running.delete(mark)).catch(() => {});
        }
        // Dequeue again once a slot is free.
        if (running.size >= mySlots) await Promise.race(running);
      }
      await Promise.all(running);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (done !== expected) throw new Error(`completed ${done} of ${expected}`);
  return expected / seconds;
}

/** Enqueues a job through the user API; resolves with its id. */
export type EnqueueViaApi = (queue: string) => Promise<number>;

/**
 * Pickup latency: from the start of the enqueue request to an executor holding the job, one job at a
 * time at random gaps (so enqueues land anywhere in a polling cycle). `long-poll` waits on the
 * coordinator's notification; `poll-1s` polls every second like Sourcegraph's default executor.
 * Resolves with the sorted latencies in ms, and (`enqueue`) how long the enqueue requests took.
 */
export async function measurePickup(
  url: string,
  enqueue: EnqueueViaApi,
  options: { mode: 'long-poll' | 'poll-1s'; samples: number; queue: string; gapMs: [number, number] },
): Promise<{ pickup: number[]; enqueue: number[] }> {
  const { mode, queue } = options;
  const client = executorClient(url, `latency-${mode}`, ACCESS_TOKEN);
  await client.heartbeat(queue);
  const latencies: number[] = [];
  const enqueueMs: number[] = [];
  let stop = false;
  const enqueuedAt = new Map<number, number>();
  const poller = (async () => {
    while (!stop) {
      const headers: Record<string, string> = mode === 'long-poll' ? { 'X-Sandfleet-Dequeue-Wait': '5' } : {};
      const res = await client.dequeue(queue, {}, headers);
      if (res.status === 200) {
        const at = enqueuedAt.get(res.body.id);
        if (at !== undefined) latencies.push(performance.now() - at);
        // Finish it, so it is not reset and handed out again while the run goes on.
        await client.jobCall(queue, 'markComplete', res.body, {});
      } else if (mode === 'poll-1s') {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  const [minGap, maxGap] = options.gapMs;
  for (let i = 0; i < options.samples; i++) {
    await new Promise((r) => setTimeout(r, minGap + Math.random() * (maxGap - minGap)));
    const before = performance.now();
    const id = await enqueue(queue);
    enqueueMs.push(performance.now() - before);
    enqueuedAt.set(id, before);
    while (latencies.length <= i) await new Promise((r) => setTimeout(r, 2));
  }
  stop = true;
  await enqueue(queue); // wakes a waiting long poll
  await poller;
  return { pickup: latencies.sort((a, b) => a - b), enqueue: enqueueMs.sort((a, b) => a - b) };
}
