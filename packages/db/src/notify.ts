import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';

/** The channel `enqueueJob` (and the resetter) notify; the payload is the queue name. */
export const JOBS_CHANNEL = 'sandfleet_jobs';

/** Tells long-polling dequeues that a queue may have a job. Best effort: callers still poll. */
export interface Notifier {
  /** Calls `listener(queue)` for every notification until the returned function is called. */
  subscribe(listener: (queue: string) => void): () => void;
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
  let client: pg.Client | undefined;
  let closed = false;
  let retryMs = RECONNECT_MIN_MS;
  let timer: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', (msg) => {
      if (msg.channel === JOBS_CHANNEL) fanOut.emit(msg.payload ?? '');
    });
    next.on('error', (err) => {
      onError(err);
      lost(next);
    });
    next.on('end', () => lost(next));
    client = next;
    await next.connect();
    await next.query(`LISTEN ${JOBS_CHANNEL}`);
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
  const unlisten = await pglite.listen(JOBS_CHANNEL, (payload) => fanOut.emit(payload));
  return {
    subscribe: fanOut.subscribe,
    async close() {
      if (!pglite.closed) await unlisten();
    },
  };
}
