import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import { sql, type Kysely } from 'kysely';
import type { Schema } from './schema.js';

/** The channel `enqueueJob` (and the resetter) notify; the payload is the queue name. */
export const JOBS_CHANNEL = 'sandfleet_jobs';

/** The channel log writes and job state changes notify; the payload is the job id. */
export const JOB_LOGS_CHANNEL = 'sandfleet_job_logs';

/**
 * Sends one notification in a statement of its own, after the write it announces has committed.
 * A transaction that notifies holds PostgreSQL's notification-queue lock from its pre-commit to its
 * end, WAL flush included; notifying inside the write would serialize every concurrent write's
 * commit on that lock. A notify-only transaction writes no WAL of its own, so it commits without
 * a flush and holds the lock briefly. Listeners see the notification only after the write is
 * visible, so a reader woken by it reads the new state.
 */
export async function notifyCommitted(db: Kysely<Schema>, channel: string, payload: string): Promise<void> {
  await sql`SELECT pg_notify(${channel}, ${payload})`.execute(db);
}

/**
 * Tells long-polling dequeues that a queue may have a job, and log followers that a job's log or
 * state moved. Best effort: callers still re-check now and then.
 */
export interface Notifier {
  /** Calls `listener(queue)` for every notification until the returned function is called. */
  subscribe(listener: (queue: string) => void): () => void;
  /** Calls `listener(jobId)` whenever a job's log or state changed, until the returned function is called. */
  subscribeJobLogs(listener: (jobId: number) => void): () => void;
}

/** The notifier as `openDatabase` holds it: `Database.close()` closes it. */
export interface ClosableNotifier extends Notifier {
  close(): Promise<void>;
}

type ErrorHandler = (err: Error) => void;

function makeFanOut(onError: ErrorHandler) {
  const listeners = new Set<(queue: string) => void>();
  return {
    subscribe(listener: (queue: string) => void): () => void {
      // Wrapped so the same function may subscribe twice and unsubscribe each independently.
      const entry = (queue: string) => listener(queue);
      listeners.add(entry);
      return () => void listeners.delete(entry);
    },
    emit(queue: string): void {
      for (const listener of [...listeners]) {
        try {
          listener(queue);
        } catch (err) {
          onError(err instanceof Error ? err : new Error(String(err)));
        }
      }
    },
  };
}

function jobIdListener(fanOut: ReturnType<typeof makeFanOut>) {
  return (listener: (jobId: number) => void) => fanOut.subscribe((payload) => listener(Number(payload)));
}

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/**
 * LISTENs on a dedicated `pg.Client` (a pooled connection can't hold a LISTEN). On error or
 * disconnect it reconnects with exponential backoff (100 ms … 5 s); notifications sent while it
 * is disconnected are lost, which is why long-pollers keep a poll interval.
 * Resolves once the first LISTEN is active.
 */
export async function createPostgresNotifier(url: string, onError: ErrorHandler): Promise<ClosableNotifier> {
  const fanOut = makeFanOut(onError);
  const logsFanOut = makeFanOut(onError);
  let client: pg.Client | undefined;
  let closed = false;
  let retryMs = RECONNECT_MIN_MS;
  let timer: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', (msg) => {
      if (msg.channel === JOBS_CHANNEL) fanOut.emit(msg.payload ?? '');
      if (msg.channel === JOB_LOGS_CHANNEL) logsFanOut.emit(msg.payload ?? '');
    });
    next.on('error', (err) => {
      onError(err);
      lost(next);
    });
    next.on('end', () => lost(next));
    client = next;
    await next.connect();
    await next.query(`LISTEN ${JOBS_CHANNEL}`);
    await next.query(`LISTEN ${JOB_LOGS_CHANNEL}`);
    retryMs = RECONNECT_MIN_MS;
  }

  function lost(which: pg.Client): void {
    if (closed || client !== which || timer) return;
    client = undefined;
    which.end().catch(() => {});
    timer = setTimeout(() => {
      timer = undefined;
      if (closed) return;
      connect().catch((err: Error) => {
        onError(err);
        if (client) lost(client);
      });
    }, retryMs);
    timer.unref();
    retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
  }

  await connect();
  return {
    subscribe: fanOut.subscribe,
    subscribeJobLogs: jobIdListener(logsFanOut),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => {});
    },
  };
}

/** PGlite delivers notifications in-process; LISTEN is issued once, before any other query runs. */
export async function createPgliteNotifier(pglite: PGlite, onError: ErrorHandler): Promise<ClosableNotifier> {
  const fanOut = makeFanOut(onError);
  const logsFanOut = makeFanOut(onError);
  const unlisten = await pglite.listen(JOBS_CHANNEL, (payload) => fanOut.emit(payload));
  const unlistenLogs = await pglite.listen(JOB_LOGS_CHANNEL, (payload) => logsFanOut.emit(payload));
  return {
    subscribe: fanOut.subscribe,
    subscribeJobLogs: jobIdListener(logsFanOut),
    async close() {
      if (pglite.closed) return;
      await unlisten();
      await unlistenLogs();
    },
  };
}
