import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_LOG_RETRY } from '../../src/logs/log-stream.js';
import { startLogCoordinator } from './log-harness.js';

/**
 * A coordinator whose body limit is below the executor's chunk size answers 413 to every chunk: each
 * is refused once (not retried forever), the entry says what is missing, and the job still ends.
 */
describe('a coordinator refusing log chunks', { timeout: 120_000 }, () => {
  let coordinator: Awaited<ReturnType<typeof startLogCoordinator>>;
  before(async () => {
    coordinator = await startLogCoordinator({ SANDFLEET_MAX_BODY_BYTES: String(256 * 1024) });
  });
  after(() => coordinator?.close());

  it('sends each refused chunk once, notes the loss and reports the outcome', async () => {
    const { view, entries, appendSeqs } = await coordinator.runStep('yes line | head -c 5000000; exit 3');
    assert.equal(view.state, 'failed');
    const [entry] = entries;
    assert.equal(entry!.exitCode, 3, 'the exit code arrives');
    // Every chunk larger than the limit is refused; a chunk that happens to be small (a flush soon after
    // a pause) is stored. A 413 answered before the body was fully sent can surface as a reset
    // connection, which is retried (boundedly) and then counted as not uploaded rather than refused.
    // Chunks are cut by size, not at line ends, so what is stored may start or end mid-line.
    const match = /^([^[]*)((?:\[log incomplete: [^\n]*\]\n){1,2})$/.exec(entry!.out);
    assert.ok(match, `stored lines, then what is missing: ${entry!.out.slice(-300)}`);
    assert.match(match[2]!, /^(\[log incomplete: the coordinator refused \d+ bytes \(\d+\.\d MiB\) of this output \(HTTP 413\)\]\n)?(\[log incomplete: \d+ bytes.* of this output could not be uploaded\]\n)?$/);
    const missing = [...match[2]!.matchAll(/(\d+) bytes/g)].reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(match[1]!.length + missing, 5_000_000 / 5 * 13, 'every byte is stored or counted as missing');
    assert.ok(missing > match[1]!.length, 'most of the output was refused');
    // 13 MB in chunks of at most 1 MiB, each sent a bounded number of times.
    const sends = new Map<number, number>();
    for (const seq of appendSeqs) sends.set(seq, (sends.get(seq) ?? 0) + 1);
    assert.ok(sends.size >= 14, `${sends.size} chunks`);
    assert.ok([...sends.values()].every((n) => n <= DEFAULT_LOG_RETRY.attempts), 'no chunk is retried without bound');
    assert.ok([...sends.values()].filter((n) => n === 1).length >= sends.size / 2, 'a refused chunk is sent once');
  });
});
