import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsx } from 'hono/jsx';
import { ansiToJsx } from '../../src/ui/ansi.js';

/** As the page renders it: the parts as children of an element (where JSX escapes text). */
const html = async (text: string) => (await jsx('pre', {}, ...ansiToJsx(text)).toString()).replace(/^<pre>|<\/pre>$/g, '');

describe('ANSI SGR → spans', () => {
  it('escapes text and turns colours into classes', async () => {
    assert.equal(await html('\x1b[1;31merror\x1b[0m: <script>&'), '<span class="ansi-fg-1 ansi-bold">error</span>: &lt;script&gt;&amp;');
  });

  it('keeps a style until reset, bright colours, backgrounds', async () => {
    assert.equal(await html('\x1b[92mok \x1b[44mboth\x1b[39m bg\x1b[m plain'), '<span class="ansi-fg-10">ok </span><span class="ansi-fg-10 ansi-bg-4">both</span><span class="ansi-bg-4"> bg</span> plain');
  });

  it('skips 256-colour and RGB arguments and drops other escape sequences', async () => {
    assert.equal(await html('\x1b[38;5;196mx\x1b[0m\x1b[38;2;1;2;3;4my\x1b[0m\x1b[2K\x1b]0;title\x07z'), 'x<span class="ansi-underline">y</span>z');
  });
});
