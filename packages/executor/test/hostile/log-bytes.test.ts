import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startLogCoordinator } from './log-harness.js';

/** Bytes PostgreSQL text cannot hold or that are not UTF-8 are stored visibly instead of failing the job. */
describe('a step printing NUL and invalid UTF-8', { timeout: 120_000 }, () => {
  let coordinator: Awaited<ReturnType<typeof startLogCoordinator>>;
  before(async () => {
    coordinator = await startLogCoordinator();
  });
  after(() => coordinator?.close());

  it('stores NUL as ␀ and invalid UTF-8 as U+FFFD, and the job completes', async () => {
    const { view, entries } = await coordinator.runStep(String.raw`printf 'a\000b\n'; printf 'c\377d\n' >&2; printf 'caf\303\251\000'`);
    assert.equal(view.state, 'completed', view.failureMessage);
    assert.equal(entries[0]!.exitCode, 0);
    assert.equal(entries[0]!.out, 'stdout: a\u2400b\nstderr: c\uFFFDd\nstdout: café\u2400\n');
  });

  it('keeps a NUL flood visible and bounded', async () => {
    const { view, entries } = await coordinator.runStep('head -c 3000000 /dev/zero');
    assert.equal(view.state, 'completed', view.failureMessage);
    const out = entries[0]!.out;
    assert.ok(!out.includes('\0'));
    assert.equal([...out.matchAll(/\u2400/g)].length, 3_000_000);
  });
});
