import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { startExecutorProcess, type ExecutorProcess } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { testBackends } from '@sandfleet/test-helpers/db';
import { closeWithin, launchBrowser, screenshot, signIn, waitForLog, waitForState, type TestBrowser } from './browser.js';

const backend = testBackends()[0]!;

/** Every `stdout: line-N` of the page's log, in order (the shell's trace on stderr names them too). */
async function logLines(page: Page): Promise<string[]> {
  const text = await page.locator('#log-entries').innerText();
  return text.match(/stdout: line-\d+/g) ?? [];
}

describe(`web UI in a real browser (${backend})`, () => {
  let coordinator: CoordinatorServer;
  let browser: TestBrowser;
  let page: Page;
  let executor: ExecutorProcess | undefined;

  before(async () => {
    coordinator = await startCoordinatorServer(backend);
    browser = await launchBrowser();
    page = await browser.context.newPage();
  });
  after(async () => {
    await executor?.stop();
    await browser?.close();
    await coordinator?.close();
  });

  it('redirects a page without a session to sign-in, refuses a wrong token, signs in with the admin token', async () => {
    await page.goto(`${coordinator.url}/jobs?state=queued`);
    assert.equal(new URL(page.url()).pathname, '/sign-in');
    await screenshot(page, 'sign-in');
    await signIn(page, 'not-the-admin-token');
    assert.match(await page.locator('[role=alert]').innerText(), /not a valid admin token/);
    assert.equal((await browser.context.cookies()).length, 0);

    await page.goto(`${coordinator.url}/jobs?state=queued`);
    await signIn(page);
    await page.waitForURL(`${coordinator.url}/jobs?state=queued`);
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'sandfleet_session');
    assert.ok(cookie, 'session cookie set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.secure, false, 'plain HTTP on loopback: not Secure');
    const answer = await page.goto(`${coordinator.url}/queues`);
    assert.equal(answer?.status(), 200);
    const headers = answer!.headers();
    assert.match(headers['content-security-policy'] ?? '', /script-src 'self'/);
    assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    // The JSON API keeps bearer auth: the session cookie alone does not open it.
    const api = await page.request.get(`${coordinator.url}/api/jobs`);
    assert.equal(api.status(), 401);
  });

  it('shows the set-up instructions while no executor ever connected, password revealed on click', async () => {
    await page.goto(`${coordinator.url}/executors`);
    const setup = page.locator('#executor-setup');
    const text = await setup.innerText();
    assert.ok(text.includes(`EXECUTOR_FRONTEND_URL=${coordinator.url}`), text);
    assert.match(text, /EXECUTOR_QUEUE_NAME=batches/);
    assert.equal(await page.locator('#executor-password').isVisible(), false);
    await page.click('#executor-setup summary');
    assert.equal(await page.locator('#executor-password').innerText(), ACCESS_TOKEN);
    await screenshot(page, 'executors-empty');
  });

  it('shows a running executor with a green dot', async () => {
    executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, { EXECUTOR_RUNTIME: 'shell', EXECUTOR_QUEUE_POLL_INTERVAL: '200ms' });
    await page.goto(`${coordinator.url}/executors`);
    // Live: the list re-reads itself, no reload.
    await page.waitForSelector('tr.executor[data-active="true"] .dot.active', { timeout: 90_000 });
    const row = await page.locator('tr.executor').first().innerText();
    assert.match(row, /batches/);
    assert.match(row, /linux/);
  });

  it('streams a job log live, with no gap or duplicate across a reload, and shows <script> and ANSI as text and colour', async () => {
    const lines = 40;
    const job = await coordinator.admin('POST', '/api/jobs', {
      queue: 'batches',
      dockerSteps: [
        {
          key: 'stream',
          image: 'ignored-by-shell',
          commands: [
            `printf 'first-at-%s\\n' "$(date +%s%3N)"`,
            `printf '\\033[31mred text\\033[0m <script>window.pwned=1</script> <b>bold?</b>\\n'`,
            `for i in $(seq 1 ${lines}); do echo line-$i; sleep 0.2; done`,
          ],
        },
      ],
    });
    await page.goto(`${coordinator.url}/jobs/${job.id}`);
    const pageLoadMs = await page.evaluate(() => {
      const nav = (globalThis as any).performance.getEntriesByType('navigation')[0];
      return (nav.loadEventEnd - nav.startTime) as number;
    });
    const firstLine = await waitForLog(page, /first-at-(\d+)/);
    const firstLineLatencyMs = (await page.evaluate(() => Date.now())) - Number(await firstLine.jsonValue());
    console.log(`job page load ${Math.round(pageLoadMs)} ms (navigation start to load event); first log line in the page ${firstLineLatencyMs} ms after the step printed it`);

    await waitForLog(page, /stdout: line-10\b/);
    assert.equal(await page.locator('#log').getAttribute('data-live'), 'open', 'streaming, not finished');
    await page.reload();
    await waitForLog(page, new RegExp(`stdout: line-${lines}\\b`));
    await page.waitForSelector('#log[data-live="ended"]', { timeout: 60_000 });
    const seen = await logLines(page);
    assert.deepEqual(seen, Array.from({ length: lines }, (_, i) => `stdout: line-${i + 1}`));
    assert.match(await page.locator('#job-state').innerText(), /completed/);

    assert.equal(await page.evaluate(() => (globalThis as any).pwned), undefined, 'job output never runs as script');
    const out = await page.locator('#log-entries').innerText();
    assert.ok(out.includes('<script>window.pwned=1</script> <b>bold?</b>'), 'markup shown as text');
    assert.equal(await page.locator('#log-entries b').count(), 0);
    assert.equal(await page.locator('#log-entries .ansi-fg-1').first().innerText(), 'red text');
    assert.ok(!out.includes('\u001b'), 'no raw escape codes');
    assert.match(await page.locator('.entry-head').last().innerText(), /exit code 0/);
    await screenshot(page, 'job');
  });

  it('cancels a running job from its page', async () => {
    const job = await coordinator.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'ignored', commands: ['echo cancel-me-started', 'sleep 300'] }] });
    await page.goto(`${coordinator.url}/jobs/${job.id}`);
    await waitForLog(page, /cancel-me-started/);
    await page.click(`button[aria-label="Cancel job ${job.id}"]`);
    await page.waitForURL(`${coordinator.url}/jobs/${job.id}`);
    const final = await waitForState(coordinator, job.id, ['canceled', 'failed', 'errored', 'completed']);
    assert.equal(final.state, 'canceled');
    await page.reload();
    assert.match(await page.locator('#job-state').innerText(), /canceled/);
  });

  it('lists jobs with counts per state, filters and shows queues', async () => {
    await page.goto(`${coordinator.url}/jobs?state=completed`);
    assert.equal(await page.locator('tr.job').count(), 1);
    assert.match(await page.locator('.counts a[data-state=canceled]').innerText(), /canceled 1/);
    await page.goto(`${coordinator.url}/jobs`);
    assert.equal(await page.locator('tr.job').count(), 2);
    await screenshot(page, 'jobs');
    await page.goto(`${coordinator.url}/queues`);
    assert.equal(await page.locator('tr.queue[data-queue=batches] td[data-state=completed]').innerText(), '1');
    await screenshot(page, 'queues');
  });

  it('refuses cross-site form posts: no Origin, a foreign Origin, no CSRF token', async () => {
    const job = await coordinator.admin('POST', '/api/jobs', { queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['true'] }] });
    await page.goto(`${coordinator.url}/jobs/${job.id}`);
    const csrf = await page.locator('.cancel-form input[name=csrf]').getAttribute('value');
    assert.ok(csrf);
    const post = (headers: Record<string, string>, form: Record<string, string>) =>
      page.request.post(`${coordinator.url}/jobs/${job.id}/cancel`, { headers, form, maxRedirects: 0 });
    assert.equal((await post({}, { csrf })).status(), 403, 'no Origin');
    assert.equal((await post({ Origin: 'https://evil.example' }, { csrf })).status(), 403, 'foreign Origin');
    assert.equal((await post({ Origin: coordinator.url }, {})).status(), 403, 'no CSRF token');
    assert.equal((await post({ Origin: coordinator.url }, { csrf: 'x'.repeat(csrf.length) })).status(), 403, 'wrong CSRF token');
    assert.equal((await coordinator.admin('GET', `/api/jobs/${job.id}`)).state, 'queued', 'the job was not touched');
    // A page on another site posting a form: the SameSite=Strict cookie is not sent along.
    const other = await browser.context.newPage();
    await other.setContent(`<form method="post" action="${coordinator.url}/jobs/${job.id}/cancel"><input name="csrf" value="${csrf}"><button>go</button></form>`);
    const [response] = await Promise.all([other.waitForResponse(`${coordinator.url}/jobs/${job.id}/cancel`), other.click('button')]);
    assert.ok(response.status() === 401 || response.status() === 403, `status ${response.status()}`);
    // Closing a page whose cross-site navigation is still committing was seen to hang under load.
    await other.waitForLoadState('load').catch(() => {});
    await closeWithin(other, 10_000);
    assert.equal((await coordinator.admin('GET', `/api/jobs/${job.id}`)).state, 'queued', 'the job was not touched');
    assert.equal((await fetch(`${coordinator.url}/healthz`)).status, 200);
  });

  it('turns the executor grey once it stops', async () => {
    await page.goto(`${coordinator.url}/executors`);
    await page.waitForSelector('tr.executor[data-active="true"]');
    await screenshot(page, 'executors');
    await executor!.stop();
    executor = undefined;
    // Inactive after executorActiveMs (15 s) without a heartbeat; the page updates itself.
    await page.waitForSelector('tr.executor[data-active="false"] .dot:not(.active)', { timeout: 90_000 });
  });

  it('signs out: the session stops working', async () => {
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'sandfleet_session')!;
    await page.click('text=Sign out');
    await page.waitForURL(/\/sign-in$/);
    const replay = await page.request.get(`${coordinator.url}/jobs`, { headers: { Cookie: `sandfleet_session=${cookie.value}` }, maxRedirects: 0 });
    assert.equal(replay.status(), 303);
    assert.match(replay.headers()['location'] ?? '', /^\/sign-in/);
  });
});
