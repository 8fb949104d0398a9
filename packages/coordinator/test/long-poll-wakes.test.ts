import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { enqueueJob } from '@sandfleet/db';
import { NO_OP_SPEC, testBackends } from '@sandfleet/test-helpers/db';
import { createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { waitFor } from '@sandfleet/test-helpers';
import { JobWaiter } from '../src/executor-api/long-poll.js';


for (const backend of testBackends()) {
  describe(`long-poll wake-ups from real notifications (${backend})`, () => {
    let t: TestApp;
    let waiter: JobWaiter;
    before(async () => {
      t = await createTestApp(backend);
      waiter = new JobWaiter(t.database.notifier);
    });
    after(async () => {
      waiter?.close();
      await t?.close();
    });

    /** A long poll parked on `queues`: counts its wake-ups; `wait()` parks it again. */
    function parked(queues: string[]) {
      const watch = waiter.watch(queues);
      const state = {
        wakes: 0,
        closed: false,
        // A wait still open when its watch closes ends too: that is no wake-up.
        wait: () => void watch.wait(60_000).then(() => state.closed || state.wakes++),
        close: (tookJob?: boolean) => {
          state.closed = true;
          watch.close(tookJob);
        },
      };
      state.wait();
      return state;
    }
    const woken = (ws: ReturnType<typeof parked>[]) => ws.reduce((n, w) => n + w.wakes, 0);
    const enqueue = (queue: string) => enqueueJob(t.database.db, { queue, spec: NO_OP_SPEC });

    it('wakes one idle waiter per job, passes the wake on when that waiter leaves with a job, and stops when it finds none', async () => {
      const polls = Array.from({ length: 5 }, () => parked(['codeintel']));
      const other = parked(['batches']);
      await enqueue('codeintel');
      await waitFor('a wake-up', () => (woken(polls) > 0 ? true : undefined), 5_000);
      await sleep(300); // any further (wrong) wake-ups would be delivered by now
      assert.equal(woken(polls), 1, 'one job wakes one waiter, not all');
      assert.equal(other.wakes, 0, 'a waiter on another queue is not woken');

      // The woken one took a job and leaves: there may be more, so another waiter is woken.
      const first = polls.find((w) => w.wakes === 1)!;
      first.close(true);
      await waitFor('the passed-on wake-up', () => (woken(polls) === 2 ? true : undefined), 5_000);
      const second = polls.find((w) => w !== first && w.wakes === 1)!;

      // That one looks, finds nothing and parks again: the wake is spent, nobody else is woken.
      second.wait();
      second.close(false);
      await sleep(300);
      assert.equal(woken(polls), 2);

      // Two more jobs: two more distinct waiters.
      await enqueue('codeintel');
      await enqueue('codeintel');
      await waitFor('two wake-ups', () => (woken(polls) === 4 ? true : undefined), 5_000);
      assert.equal(polls.filter((w) => w.wakes > 0).length, 4, 'each wake went to a different waiter');
      for (const w of [...polls, other]) w.close();
    });

    it('passes on a wake taken by a waiter that leaves without having looked again', async () => {
      // Busy with an attempt (not waiting) when the job commits: the wake marks it to look again.
      const busy = waiter.watch(['codeintel']);
      await enqueue('codeintel');
      await sleep(300);
      const idle = parked(['codeintel']);
      // Its request ends (the wait is over) before it looked: the wake goes to the next waiter.
      busy.close(false);
      await waitFor('the wake passed on', () => (idle.wakes === 1 ? true : undefined), 5_000);
      idle.close();
    });

    it('re-checks for jobs no notification announced with one waiter per queue, not all of them', async () => {
      const rechecking = new JobWaiter(t.database.notifier, 200);
      try {
        const polls = Array.from({ length: 4 }, () => {
          const watch = rechecking.watch(['codeintel']);
          const state = { wakes: 0, closed: false, watch };
          void watch.wait(60_000).then(() => state.closed || state.wakes++);
          return state;
        });
        // A job put in without a notification (as a passed retry delay would be).
        await sql`INSERT INTO jobs (queue, payload) VALUES ('codeintel', ${JSON.stringify(NO_OP_SPEC)}::jsonb)`.execute(t.database.db);
        await waitFor('a re-check', () => (polls.some((w) => w.wakes > 0) ? true : undefined), 5_000);
        assert.equal(polls.filter((w) => w.wakes > 0).length, 1, 'one waiter re-checks per tick');
        for (const w of polls) {
          w.closed = true;
          w.watch.close();
        }
      } finally {
        rechecking.close();
      }
    });
  });
}
