import type { Notifier } from '@sandfleet/db';

/** A long-polling dequeue's registration; see JobWaiter.watch. */
interface Waiter {
  readonly queues: ReadonlySet<string>;
  /** Woken and not yet back from its next attempt: it will look at the queue anyway. */
  pending: boolean;
  /** Waiting right now (not running an attempt). */
  waiting: boolean;
  /** The queue of the last wake it took, passed on when it leaves with a job or without looking. */
  tookWakeFor: string | undefined;
  wake(queue: string): void;
}

/**
 * Wakes long-polling dequeues when a job is enqueued. Notifications come from the database
 * (LISTEN/NOTIFY on PostgreSQL, in-process on PGlite), so a job enqueued through any coordinator
 * replica wakes waiters on all of them.
 *
 * One notification (one job) wakes one waiter of its queue, preferring one that is idle, the
 * longest-waiting first: waking all of them sent every idle executor's dequeue to the database
 * for each job. A waiter that leaves holding a job passes the wake on (there may be more jobs than
 * notifications, e.g. from one statement that queued several), and so does one that leaves without
 * having looked (its request ended); a wake that finds the queue empty stops there.
 */
export class JobWaiter {
  private readonly waiters = new Set<Waiter>();
  private readonly unsubscribe: () => void;
  private readonly recheck: NodeJS.Timeout;

  /**
   * `recheckMs`: how often one waiter per queue looks anyway, for jobs no notification announces
   * (a retry delay or process_after that passed, a notification lost while the listener
   * reconnected). One per queue, not each waiter: 1000 idle long polls re-checking every 5 s each
   * sent 200 dequeue statements a second.
   */
  constructor(notifier: Notifier, recheckMs = 5_000) {
    this.unsubscribe = notifier.subscribe((queue) => this.wakeOne(queue));
    this.recheck = setInterval(() => this.recheckQueues(), recheckMs);
    this.recheck.unref();
  }

  /**
   * Returns a function that resolves when one of `queues` may have a new job (a notification or
   * the periodic re-check woke this waiter), after `ms`, or when
   * `signal` aborts, whichever comes first. Subscribe before checking the queue, then wait: a job
   * enqueued in between is not missed. `close(tookJob)` says whether the last attempt got a job.
   */
  watch(queues: readonly string[]): { wait: (ms: number, signal?: AbortSignal) => Promise<void>; close: (tookJob?: boolean) => void } {
    let resolveWait: (() => void) | undefined;
    const waiter: Waiter = {
      queues: new Set(queues),
      pending: false,
      waiting: false,
      tookWakeFor: undefined,
      wake: (queue) => {
        waiter.pending = true;
        waiter.tookWakeFor = queue;
        resolveWait?.();
      },
    };
    this.waiters.add(waiter);
    const wait = (ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve) => {
        if (waiter.pending || signal?.aborted) {
          waiter.pending = false;
          return resolve();
        }
        // Looked and found nothing since its last wake: that wake is spent.
        waiter.tookWakeFor = undefined;
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolveWait = undefined;
          waiter.waiting = false;
          waiter.pending = false;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener('abort', done, { once: true });
        resolveWait = done;
        waiter.waiting = true;
      });
    const close = (tookJob = false) => {
      if (!this.waiters.delete(waiter)) return;
      const pending = waiter.pending;
      resolveWait?.(); // a wait still open ends with its watch
      const queue = waiter.tookWakeFor;
      if (queue !== undefined && (tookJob || pending)) this.wakeOne(queue);
    };
    return { wait, close };
  }

  close(): void {
    clearInterval(this.recheck);
    this.unsubscribe();
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w.wake('');
  }

  private recheckQueues(): void {
    const queues = new Set<string>();
    for (const w of this.waiters) for (const q of w.queues) queues.add(q);
    for (const q of queues) this.wakeOne(q);
  }

  private wakeOne(queue: string): void {
    let busy: Waiter | undefined;
    for (const w of this.waiters) {
      if (!w.queues.has(queue) || w.pending) continue;
      if (w.waiting) return this.wake(w, queue);
      busy ??= w;
    }
    // Every waiter is running an attempt that may have looked before this job committed.
    if (busy) this.wake(busy, queue);
  }

  private wake(waiter: Waiter, queue: string): void {
    // To the back of the line: the next wake goes to one that has waited longer.
    this.waiters.delete(waiter);
    this.waiters.add(waiter);
    waiter.wake(queue);
  }
}
