/**
 * log-stream.js in a real browser against a scripted event stream: the events are the server's own
 * (toHtmlEvent), sent in an order the follower produces when a step's creation, output and exit
 * land in one read after other events were already streamed: an id-less announcement of the step,
 * then its output. A browser hands that announcement the previous event's id as `lastEventId`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { LogEvent } from '../../src/jobs/log-events.js';
import { toHtmlEvent } from '../../src/ui/routes.js';
import { launchBrowser, waitForLog, type TestBrowser } from './browser.js';

const LOG_STREAM_JS = fs.readFileSync(new URL('../../src/ui/static/log-stream.js', import.meta.url), 'utf8');
const JOB = 7;
const step = (idx: number, key: string, exitCode?: number) => ({ attempt: 1, idx, key, command: [], startTime: '2026-12-02T10:00:00Z', ...(exitCode === undefined ? {} : { exitCode, durationMs: 5 }) });
const chunk = (id: number, idx: number, out: string): LogEvent => ({ event: 'output', id, data: { id, attempt: 1, entryIdx: idx, out, replaces: false } });

/** What the follower sends for: step 1 written and streamed, then step 2 created, written and ended between two reads. */
const SCRIPT: LogEvent[] = [
  { event: 'entry', id: 10, data: step(1, 'step.one') },
  chunk(11, 1, 'stdout: first step\n'),
  { event: 'entry', id: 12, data: step(1, 'step.one', 0) },
  { event: 'entry', data: step(2, 'step.two') },
  chunk(14, 2, 'stdout: about-to-fail\n'),
  { event: 'entry', id: 15, data: step(2, 'step.two', 3) },
  { event: 'end', data: { state: 'failed' } },
];

describe('log-stream.js follows a job log in a real browser', { timeout: 120_000 }, () => {
  let browser: TestBrowser;
  let server: http.Server;
  let url: string;

  before(async () => {
    server = http.createServer(async (req, res) => {
      if (req.url === '/log-stream.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(LOG_STREAM_JS);
      } else if (req.url?.startsWith('/events')) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
        for (const event of SCRIPT) {
          const e = await toHtmlEvent(JOB, event);
          res.write(`event: ${e.event}\n${e.id ? `id: ${e.id}\n` : ''}data: ${e.data}\n\n`);
        }
        res.end();
      } else {
        res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><div id="log" data-events="/events" data-cursor="0"><div id="log-entries"></div></div><script src="/log-stream.js"></script>');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.close();
  });

  it('shows the output of a step announced without an id after events with ids', async () => {
    const page = await browser.context.newPage();
    await page.goto(url);
    await waitForLog(page, /about-to-fail/, 20_000);
    const text = await page.locator('#log-entries').innerText();
    assert.match(text, /first step/);
    assert.equal((text.match(/about-to-fail/g) ?? []).length, 1, 'shown once');
    assert.equal(await page.locator('#log').getAttribute('data-cursor'), '15');
    await page.close();
  });
});
