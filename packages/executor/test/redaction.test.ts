import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRedactions, LinePrefixer, PASSWORD_REPLACEMENT, Redactor } from '../src/index.js';

function streamed(redactor: Redactor, chunks: string[]): string {
  const stream = redactor.stream();
  return chunks.map((c) => stream.push(c)).join('') + stream.end();
}

describe('redaction', () => {
  const redactor = new Redactor(buildRedactions('frontend-pw', { 'hunter2-secret': '[SECRET]', 'abc': '[A]', 'abcdef': '[LONG]', '': 'never' }));

  it('replaces job secrets and the frontend password; ignores empty secrets', () => {
    assert.equal(redactor.redactString('x hunter2-secret y frontend-pw z'), `x [SECRET] y ${PASSWORD_REPLACEMENT} z`);
    assert.equal(redactor.redactString('plain text'), 'plain text');
    assert.equal(new Redactor(new Map([['', 'x']])).redactString('abc'), 'abc');
  });

  it('also removes extra executor secrets such as the job token', () => {
    const r = new Redactor(buildRedactions('pw-1', null, ['job-token-xyz']));
    assert.equal(r.redactString('pw-1 job-token-xyz'), `${PASSWORD_REPLACEMENT} ${PASSWORD_REPLACEMENT}`);
  });

  it('prefers the longest secret at a position', () => {
    assert.equal(redactor.redactString('abcdef abc abcde'), '[LONG] [A] [A]de');
  });

  it('catches a secret split across two chunks at every split point', () => {
    const text = 'before hunter2-secret middle frontend-pw after\n';
    const expected = `before [SECRET] middle ${PASSWORD_REPLACEMENT} after\n`;
    for (let i = 0; i <= text.length; i++) {
      assert.equal(streamed(redactor, [text.slice(0, i), text.slice(i)]), expected, `split at ${i}`);
    }
  });

  it('catches secrets split across three chunks and one-character chunks', () => {
    const text = 'hunter2-secretfrontend-pwabcdefabc';
    const expected = `[SECRET]${PASSWORD_REPLACEMENT}[LONG][A]`;
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        assert.equal(streamed(redactor, [text.slice(0, i), text.slice(i, j), text.slice(j)]), expected, `split at ${i},${j}`);
      }
    }
    assert.equal(streamed(redactor, [...text]), expected);
  });

  it('does not turn a shorter secret into a match while a longer one may still complete', () => {
    assert.equal(streamed(redactor, ['xxabc', 'def']), 'xx[LONG]');
    assert.equal(streamed(redactor, ['xxabc', 'dXf']), 'xx[A]dXf');
    assert.equal(streamed(redactor, ['xxabc']), 'xx[A]');
  });

  it('holds back only a possible secret prefix, not the whole chunk', () => {
    const stream = redactor.stream();
    assert.equal(stream.push('line one\nhunt'), 'line one\n');
    assert.equal(stream.push('er2'), '');
    assert.equal(stream.push('-secret!'), '[SECRET]!');
    assert.equal(stream.push('no secret here'), 'no secret here');
    assert.equal(stream.end(), '');
  });

  it('redacts multi-line secrets', () => {
    const key = '-----BEGIN KEY-----\nMIIB\n-----END KEY-----';
    const r = new Redactor(new Map([[key, '<key>']]));
    assert.equal(streamed(r, ['cat: -----BEGIN KEY-----\nMI', 'IB\n-----END KEY-----\ndone\n']), 'cat: <key>\ndone\n');
  });
});

describe('line prefixing', () => {
  it('prefixes every complete line and waits for the rest of a partial one', () => {
    const lines = new LinePrefixer('stdout: ');
    assert.equal(lines.push('one\ntw'), 'stdout: one\n');
    assert.equal(lines.push('o\n\nthree'), 'stdout: two\nstdout: \n');
    assert.equal(lines.end(), 'stdout: three\n');
    assert.equal(lines.end(), '');
  });

  it('emits nothing for a stream that ends on a newline', () => {
    const lines = new LinePrefixer('stderr: ');
    assert.equal(lines.push('only\n'), 'stderr: only\n');
    assert.equal(lines.end(), '');
  });
});
