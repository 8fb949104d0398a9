import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonChunk } from '../src/logs/json-chunk.js';

/** The request body a chunk frames, parsed back: what the coordinator would read. */
function sent(chunk: JsonChunk): string {
  const body = chunk.frame(Buffer.from('{"out":"'), Buffer.from('"}'));
  return (JSON.parse(Buffer.from(body).toString('utf8')) as { out: string }).out;
}

describe('log chunks encoded as JSON bytes', () => {
  it('encodes what JSON.stringify would, and fills up to its capacity without splitting a character', () => {
    const texts = ['plain ascii ', 'quote " backslash \\ tab \t newline \n', 'é😀 \u2028 \u0001', 'x'.repeat(70)];
    for (const capacity of [8, 13, 40, 64]) {
      const chunks: JsonChunk[] = [new JsonChunk(capacity)];
      for (const text of texts) {
        let rest = text;
        for (;;) {
          const taken = chunks.at(-1)!.write(rest);
          if (taken === rest.length) break;
          rest = rest.slice(taken);
          chunks.push(new JsonChunk(capacity));
        }
      }
      assert.equal(chunks.map(sent).join(''), texts.join(''));
      for (const chunk of chunks) {
        const out = chunk.toString();
        assert.ok(Buffer.byteLength(JSON.stringify(out)) <= capacity, `${JSON.stringify(out)} in ${capacity} bytes`);
        assert.equal(chunk.textBytes, Buffer.byteLength(out));
        assert.equal(chunk.chars, out.length);
        assert.ok(!/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(out), `a split surrogate pair in ${JSON.stringify(out)}`);
      }
    }
  });

  it('frames the body in place, and still whole when the head or the marker lines do not fit the room', () => {
    const chunk = new JsonChunk(1024);
    chunk.write('a "line"\n');
    assert.equal(sent(chunk), 'a "line"\n');
    const longHead = Buffer.from(`{"executorName":"${'n'.repeat(2000)}","out":"`);
    assert.equal((JSON.parse(Buffer.from(chunk.frame(longHead, Buffer.from('"}'))).toString()) as { out: string }).out, 'a "line"\n');
    const markers = `[log truncated: ${'9'.repeat(10_000)}]\n`;
    chunk.writeUnbounded(markers);
    assert.equal(sent(chunk), `a "line"\n${markers}`);
    chunk.reset();
    assert.ok(chunk.isEmpty);
    assert.equal(sent(chunk), '');
  });
});
