import type { Notifier } from '@sandfleet/db';

/**
 * Wakes long-polling dequeues when a job is enqueued. Notifications come from the database
 * (LISTEN/NOTIFY on PostgreSQL, in-process on PGlite), so a job enqueued through any coordinator
 * replica wakes waiters on all of them.
 */
export class JobWaiter {
  private readonly waiters = new Set<{ queues: ReadonlySet<string>; wake: () => void }>();
  private readonly unsubscribe: () => void;

  constructor(notifier: Notifier) {
    this.unsubscribe = notifier.subscribe((queue) => {
      for (const w of this.waiters) if (w.queues.has(queue)) w.wake();
    });
  }

  /**
   * Returns a function that resolves when one of `queues` may have a new job, after `ms`, or when
   * `signal` aborts, whichever comes first. Subscribe before checking the queue, then wait: a job
   * enqueued in between is not missed.
   */
  watch(queues: readonly string[]): { wait: (ms: number, signal?: AbortSignal) => Promise<void>; close: () => void } {
    let pending = false;
    let resolveWait: (() => void) | undefined;
    const entry = {
      queues: new Set(queues),
      wake: () => {
        pending = true;
        resolveWait?.();
      },
    };
    this.waiters.add(entry);
    const wait = (ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve) => {
        if (pending || signal?.aborted) {
          pending = false;
          return resolve();
        }
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolveWait = undefined;
          pending = false;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done, { once: true });
        resolveWait = done;
      });
    return { wait, close: () => this.waiters.delete(entry) };
  }

  close(): void {
    this.unsubscribe();
    for (const w of this.waiters) w.wake();
    this.waiters.clear();
  }
}
