import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { testBackends } from '@sandfleet/test-helpers/db';
import { launchBrowser, signedInPage, type TestBrowser } from './browser.js';

const backend = testBackends()[0]!;

describe(`web UI with a queue declared in the site config (${backend})`, () => {
  let coordinator: CoordinatorServer;
  let browser: TestBrowser;
  let page: Page;
  const docsJobIds: number[] = [];

  before(async () => {
    coordinator = await startCoordinatorServer(backend, {}, { 'sandfleet.queues': [{ name: 'docs', weight: 2 }] });
    for (const queue of ['docs', 'docs', 'batches']) {
      const job = await coordinator.admin('POST', '/api/jobs', { queue, dockerSteps: [{ image: 'x', commands: ['true'] }] });
      if (queue === 'docs') docsJobIds.push(job.id);
    }
    browser = await launchBrowser();
    page = await signedInPage(browser, coordinator.url);
  });
  after(async () => {
    await browser?.close();
    await coordinator?.close();
  });

  it('lists the declared queue on the queues page, with its counts and scaling row', async () => {
    await page.goto(`${coordinator.url}/queues`);
    const names = await page.locator('tr.queue').evaluateAll((rows) => rows.map((r) => (r as any).dataset.queue));
    assert.deepEqual(names, ['batches', 'codeintel', 'docs']);
    assert.equal((await page.locator('tr.queue[data-queue="docs"] td[data-state="queued"]').innerText()).trim(), '2');
    assert.equal((await page.locator('tr.scaling[data-queue="docs"] td[data-figure="queue-size"]').innerText()).trim(), '2');
  });

  it('offers the declared queue in the jobs filter and filters by it', async () => {
    await page.goto(`${coordinator.url}/jobs`);
    const options = await page.locator('select[name="queue"] option').evaluateAll((list) => list.map((o) => (o as any).value));
    assert.deepEqual(options, ['', 'batches', 'codeintel', 'docs']);
    await page.selectOption('select[name="queue"]', 'docs');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL((url) => url.searchParams.get('queue') === 'docs');
    const ids = (await page.locator('tr.job').evaluateAll((rows) => rows.map((r) => Number((r as any).dataset.id)))).sort();
    assert.deepEqual(ids, [...docsJobIds].sort());
    assert.equal(await page.locator('select[name="queue"] option[value="docs"]').evaluate((o) => (o as any).selected), true);
  });
});
