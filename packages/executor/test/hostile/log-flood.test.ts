import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LINE_CONTINUED_MARKER, MAX_LINE_CHARS } from '../../src/logs/line-prefixer.js';
import { startLogCoordinator } from './log-harness.js';

/**
 * A step that floods its output through the real coordinator (body limit 10 MiB): everything is
 * stored in chunks, or cut at the budget with a marker line, and the job's outcome is reported.
 */
describe('a step flooding its log', { timeout: 300_000 }, () => {
  let coordinator: Awaited<ReturnType<typeof startLogCoordinator>>;
  before(async () => {
    coordinator = await startLogCoordinator();
  });
  after(() => coordinator?.close());

  it('stores 20 MB of lines in full and reports the job completed', async () => {
    const { view, entries, appendSeqs } = await coordinator.runStep('yes line | head -c 20000000');
    assert.equal(view.state, 'completed', view.failureMessage);
    assert.equal(entries.length, 1);
    const [entry] = entries;
    assert.equal(entry!.exitCode, 0);
    const lines = 20_000_000 / 'line\n'.length;
    assert.equal(entry!.out.length, lines * 'stdout: line\n'.length);
    assert.ok(entry!.out.startsWith('stdout: line\nstdout: line\n'));
    assert.ok(entry!.out.endsWith('stdout: line\n'));
    // 52 MB in chunks of at most 1 MiB (and the partly filled ones the timer sends), each sent once.
    assert.ok(appendSeqs.length >= 50, `${appendSeqs.length} appends`);
    assert.equal(new Set(appendSeqs).size, appendSeqs.length);
  });

  it('cuts the log at the job budget with one marker line saying how much was dropped', async () => {
    const limit = 4 * 1024 * 1024;
    const { view, entries } = await coordinator.runStep('yes line | head -c 20000000', { maxLogBytes: limit });
    assert.equal(view.state, 'completed', view.failureMessage);
    const out = entries[0]!.out;
    const lines = out.split('\n').slice(0, -1);
    const markers = lines.filter((l) => l.startsWith('[log truncated: '));
    assert.equal(markers.length, 1);
    assert.equal(lines.at(-1), markers[0]);
    const kept = out.length - markers[0]!.length - 1;
    assert.ok(kept <= limit && kept > limit - 100, `${kept} bytes kept`);
    const dropped = 20_000_000 / 5 * 13 - kept;
    assert.match(markers[0]!, new RegExp(`^\\[log truncated: ${dropped} bytes \\(.* MiB\\) of output dropped after reaching the job's log limit of ${limit} bytes`));
    assert.ok(lines.slice(0, -1).every((l) => l === 'stdout: line'), 'whole lines up to the cut');
  });

  it('handles 50 MB without a newline in linear time, split into marked pieces', async () => {
    const size = 50_000_000;
    const { view, entries } = await coordinator.runStep(`head -c ${size} /dev/zero | tr '\\0' x`);
    assert.equal(view.state, 'completed', view.failureMessage);
    const lines = entries[0]!.out.split('\n').slice(0, -1);
    assert.equal(lines.length, Math.ceil(size / MAX_LINE_CHARS));
    assert.equal(lines[0], `stdout: ${'x'.repeat(MAX_LINE_CHARS)}`);
    assert.ok(lines.slice(1).every((l) => l.startsWith(`stdout: ${LINE_CONTINUED_MARKER}x`)));
    const xs = lines.reduce((n, l) => n + l.length - 'stdout: '.length, 0) - (lines.length - 1) * LINE_CONTINUED_MARKER.length;
    assert.equal(xs, size);
  });
});
