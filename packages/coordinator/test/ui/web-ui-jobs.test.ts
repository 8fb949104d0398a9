import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { executorClient, startExecutorProcess, type ExecutorProcess } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { testBackends } from '@sandfleet/test-helpers/db';
import { launchBrowser, screenshot, signedInPage, waitForLog, waitForState, type TestBrowser } from './browser.js';

const backend = testBackends()[0]!;
// Short enough that a silent executor's job is reset within the test; real executors heartbeat every second.
const STALLED = { SANDFLEET_STALLED_MAX_AGE: '8s', SANDFLEET_RESETTER_INTERVAL: '1s' };
const FAST_EXECUTOR = { EXECUTOR_RUNTIME: 'shell', EXECUTOR_QUEUE_POLL_INTERVAL: '200ms', EXECUTOR_HEARTBEAT_INTERVAL: '1s' };

describe(`web UI: retries, attempts, filters, executors, big logs (${backend})`, () => {
  let coordinator: CoordinatorServer;
  let browser: TestBrowser;
  let page: Page;
  const executors: ExecutorProcess[] = [];

  before(async () => {
    coordinator = await startCoordinatorServer(backend, STALLED);
    browser = await launchBrowser();
    page = await signedInPage(browser, coordinator.url);
    executors.push(startExecutorProcess(coordinator.url, ACCESS_TOKEN, FAST_EXECUTOR));
  });
  after(async () => {
    for (const executor of executors) await executor.stop();
    await browser?.close();
    await coordinator?.close();
  });

  it('shows each executor with its runtime, its running jobs (linked) and a compatible badge', async () => {
    const job = await coordinator.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['echo running-for-the-list', 'sleep 120'] }] });
    await waitForState(coordinator, job.id, ['processing'], 90_000);
    await page.goto(`${coordinator.url}/executors`);
    // The list refreshes itself: the row may show the job a poll later.
    const row = page.locator('tr.executor', { has: page.locator(`td.running a[href="/jobs/${job.id}"]`) });
    await row.waitFor({ timeout: 60_000 });
    assert.equal((await row.locator('td.runtime').innerText()).trim(), 'shell');
    assert.equal(await row.locator('[data-compatibility]').getAttribute('data-compatibility'), 'up-to-date');
    assert.equal((await row.locator('[data-compatibility]').innerText()).trim(), 'compatible');
    await screenshot(page, 'executors-running');
    await row.locator(`td.running a[href="/jobs/${job.id}"]`).click();
    await page.waitForURL(`${coordinator.url}/jobs/${job.id}`);
    await coordinator.admin('POST', `/api/jobs/${job.id}/cancel`);
    await waitForState(coordinator, job.id, ['canceled']);
  });

  it('retries a failed job from its page: a new job runs, linked both ways', async () => {
    const job = await coordinator.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ key: 'fails', image: 'x', commands: ['echo about-to-fail', 'exit 3'] }] });
    await waitForState(coordinator, job.id, ['failed', 'errored']);
    await page.goto(`${coordinator.url}/jobs/${job.id}`);
    await page.click(`button[aria-label="Retry job ${job.id}"]`);
    await page.waitForURL((url) => /^\/jobs\/\d+$/.test(url.pathname) && url.pathname !== `/jobs/${job.id}`);
    const retryId = Number(new URL(page.url()).pathname.split('/').pop());
    assert.equal(await page.locator('#retry-of').getAttribute('href'), `/jobs/${job.id}`);
    const retried = await waitForState(coordinator, retryId, ['failed', 'errored']);
    assert.doesNotMatch(retried.failureMessage ?? '', /died while handling/, 'the retry ran rather than being reset away');
    await waitForLog(page, /about-to-fail/);
    assert.equal(retried.queue, 'batches');
    assert.equal(retried.retryOf, job.id);
    await page.goto(`${coordinator.url}/jobs/${job.id}`);
    assert.match(await page.locator('#retried-as').innerText(), new RegExp(`#${retryId}`));
    // A running job has no Retry button; the form refuses one anyway (409).
    const running = await coordinator.admin('POST', '/api/jobs', { queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['true'] }] });
    await page.goto(`${coordinator.url}/jobs/${running.id}`);
    assert.equal(await page.locator('.retry-form').count(), 0);
    const csrf = await page.locator('.cancel-form input[name=csrf]').getAttribute('value');
    const refused = await page.request.post(`${coordinator.url}/jobs/${running.id}/retry`, { headers: { Origin: coordinator.url }, form: { csrf: csrf! }, maxRedirects: 0 });
    assert.equal(refused.status(), 409);
    await coordinator.admin('POST', `/api/jobs/${running.id}/cancel`);
  });

  it('shows two attempts after a silent executor lost the job: the reset with its reason, then the run that completed', async () => {
    const job = await coordinator.admin('POST', '/api/jobs', { queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['echo second-attempt-ran'] }] });
    // An executor that takes the job and then never heartbeats.
    const silent = executorClient(coordinator.url, 'silent-executor', ACCESS_TOKEN);
    const claimed = await silent.dequeue('codeintel');
    assert.equal(claimed.status, 200);
    assert.equal(claimed.body.id, job.id);
    await waitForState(coordinator, job.id, ['queued'], 60_000);
    executors.push(startExecutorProcess(coordinator.url, ACCESS_TOKEN, { ...FAST_EXECUTOR, EXECUTOR_QUEUE_NAME: 'codeintel' }));
    await waitForState(coordinator, job.id, ['completed'], 90_000);

    await page.goto(`${coordinator.url}/jobs/${job.id}`);
    const rows = page.locator('tr.attempt');
    assert.equal(await rows.count(), 2);
    const first = await rows.nth(0).innerText();
    assert.match(first, /silent-executor/);
    assert.match(first, /reset/);
    assert.match(first, /no heartbeat for over 8s: returned to the queue/);
    assert.equal(await rows.nth(1).getAttribute('data-outcome'), 'completed');
    assert.doesNotMatch(await rows.nth(1).innerText(), /silent-executor/);
    await waitForLog(page, /second-attempt-ran/);
    await screenshot(page, 'job-attempts');
  });

  it('filters the jobs list by repository, with the queue and state filters and the counts', async () => {
    const commit = 'c'.repeat(40);
    const steps = [{ image: 'x', commands: ['true'] }];
    const a1 = await coordinator.admin('POST', '/api/jobs', { queue: 'batches', repositoryName: 'github.com/acme/one', commit, dockerSteps: steps });
    const a2 = await coordinator.admin('POST', '/api/jobs', { queue: 'codeintel', repositoryName: 'github.com/acme/one', commit, dockerSteps: steps });
    await coordinator.admin('POST', '/api/jobs', { queue: 'batches', repositoryName: 'github.com/acme/two', commit, dockerSteps: steps });
    await page.goto(`${coordinator.url}/jobs`);
    await page.fill('input[name=repository]', 'github.com/acme/one');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/repository=github\.com%2Facme%2Fone/);
    const ids = async () => (await page.locator('tr.job').evaluateAll((rows) => rows.map((r) => Number((r as any).dataset.id)))).sort((x, y) => x - y);
    assert.deepEqual(await ids(), [a1.id, a2.id]);
    const total = await page.locator('.counts a').evaluateAll((links) => links.reduce((sum, l) => sum + Number(((l as any).textContent as string).trim().split(/\s+/).pop()), 0));
    assert.equal(total, 2, 'the counts are of this repository');
    await page.selectOption('select[name=queue]', 'codeintel');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/queue=codeintel/);
    assert.deepEqual(await ids(), [a2.id]);
    // A repository cell links to its filter.
    await page.goto(`${coordinator.url}/jobs`);
    await page.click(`tr.job[data-id="${a1.id}"] a:text("github.com/acme/one")`);
    await page.waitForURL(/repository=github\.com%2Facme%2Fone/);
    assert.deepEqual(await ids(), [a1.id, a2.id]);
  });

  it('shows the start of a multi-MiB log entry, live and after a reload, with the rest behind show more and the download', async () => {
    const job = await coordinator.admin('POST', '/api/jobs', {
      queue: 'batches',
      dockerSteps: [{ key: 'flood', image: 'x', commands: ['echo flood-start', 'sleep 1', 'seq 1 450000', 'echo flood-end'] }],
    });
    await page.goto(`${coordinator.url}/jobs/${job.id}`);
    await waitForLog(page, /flood-start/);
    // Live: appending stops at the entry's limit and "show more" appears.
    // The flood step's entry (the executor logs set-up steps of its own before it).
    const flood = page.locator('.entry', { has: page.locator('.more:not([hidden])') });
    await flood.waitFor({ timeout: 120_000 });
    await page.waitForSelector('#log[data-live="ended"]', { timeout: 120_000 });
    const liveText = await flood.locator('pre.out').evaluate((el) => ((el as any).textContent as string).length);
    assert.ok(liveText <= 64 * 1024, `live page holds ${liveText} characters`);
    const final = await waitForState(coordinator, job.id, ['completed']);
    assert.equal(final.state, 'completed');

    const response = await page.reload();
    const html = await response!.text();
    assert.ok(html.length < 256 * 1024, `the page is ${html.length} bytes`);
    assert.ok(!html.includes('stdout: 450000'), 'the end of the entry is not in the page');
    assert.equal(await flood.count(), 1, 'only the flood step is cut');
    const out = flood.locator('pre.out');
    const before = await out.evaluate((el) => ((el as any).textContent as string).length);
    assert.match(await flood.locator('.more-size').innerText(), /64 KiB of \d\.\d MiB shown/);
    await flood.locator('.show-more').click();
    await page.waitForFunction((n) => {
      const cut = [...(globalThis as any).document.querySelectorAll('#log-entries .entry')].find((e: any) => !e.querySelector('.more').hidden);
      return (cut.querySelector('pre.out').textContent as string).length > n;
    }, before);
    const after = await out.innerText();
    // The next page follows on exactly where the first stopped.
    const numbers = [...after.matchAll(/^stdout: (\d+)$/gm)].map((m) => Number(m[1]));
    const firstGap = numbers.findIndex((n, i) => i > 0 && n !== numbers[i - 1]! + 1);
    assert.ok(firstGap === -1 || firstGap === numbers.length - 1, `lines run on without a gap (gap at ${firstGap})`);
    assert.equal(numbers[0], 1);
    assert.ok(numbers.length > 20_000, `${numbers.length} lines after one show more`);

    const full = await page.request.get(`${coordinator.url}/jobs/${job.id}/log.txt`);
    assert.equal(full.status(), 200);
    const text = await full.text();
    assert.ok(text.includes('stdout: 450000\n') && text.includes('stdout: flood-end'), 'the whole log is downloadable');
    assert.ok(text.length > 3_000_000, `${text.length} characters`);
    assert.match(full.headers()['content-disposition'] ?? '', /attachment/);
  });
});
