import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { executorClient, startExecutorProcess, type ExecutorProcess } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, ADMIN_TOKEN } from '@sandfleet/test-helpers/coordinator';
import { testBackends } from '@sandfleet/test-helpers/db';
import { openSignedIn, screenshot, signIn, startBrowserHarness, type BrowserHarness } from './browser.js';

const backend = testBackends()[0]!;
/** Wrong tokens one address may send before sign-in answers 429 (small, so the test stays short). */
const MAX_FAILURES = 3;
/** The grace period of the rotation under test: long enough for one job on a loaded machine. */
const GRACE_SECONDS = 40;

/** Polls `check` until it returns true. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A cell of the Queues page, by row and figure. */
async function figure(page: Page, table: 'queue' | 'scaling', queue: string, name: string): Promise<string> {
  return (await page.locator(`tr.${table}[data-queue="${queue}"] td[data-figure="${name}"]`).innerText()).trim();
}

/** A sign-in form post sent from a chosen loopback source address (another client, as the limiter sees it). */
function signInFrom(url: string, localAddress: string, token: string): Promise<{ status: number; retryAfter: string | undefined }> {
  const target = new URL('/sign-in', url);
  const body = new URLSearchParams({ token, next: '/' }).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        localAddress,
        headers: { Origin: target.origin, 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe(`web UI: queues figures, configuration, sign-in limit (${backend})`, () => {
  let ui: BrowserHarness;
  let executor: ExecutorProcess | undefined;

  before(async () => {
    ui = await startBrowserHarness(backend, { SANDFLEET_SIGN_IN_MAX_FAILURES: String(MAX_FAILURES), SANDFLEET_SIGN_IN_WINDOW: '10m' });
  });
  after(async () => {
    await executor?.stop();
    await ui?.close();
  });

  it('shows counts, waits and the autoscaling figure for a given jobs_per_instance_scaling', async () => {
    const { coordinator, page } = ui;
    for (let i = 0; i < 3; i++) await coordinator.admin('POST', '/api/jobs', { queue: 'codeintel', dockerSteps: [{ image: 'x', commands: ['true'] }] });
    const picked = await executorClient(coordinator.url, 'queues-test-executor', ACCESS_TOKEN).dequeue('codeintel');
    assert.equal(picked.status, 200);

    await openSignedIn(page, `${coordinator.url}/queues?jobs_per_instance_scaling=2`);
    assert.equal(await page.locator('tr.queue[data-queue=codeintel] td[data-state=queued]').innerText(), '2');
    assert.equal(await page.locator('tr.queue[data-queue=codeintel] td[data-state=processing]').innerText(), '1');
    assert.match(await figure(page, 'queue', 'codeintel', 'oldest-queued'), /^\d+ (ms|s)$/);
    assert.match(await figure(page, 'queue', 'codeintel', 'pickup-p50'), /^\d+ (ms|s)$/);
    assert.equal(await figure(page, 'queue', 'codeintel', 'picked-up'), '1');
    assert.equal(await figure(page, 'queue', 'batches', 'pickup-p95'), '—');
    // Queue size = queued + errored + processing; ceil(3 / 2) = 2 instances; no batches jobs: min_replicas 1.
    assert.equal(await figure(page, 'scaling', 'codeintel', 'queue-size'), '3');
    assert.equal(await figure(page, 'scaling', 'codeintel', 'instances'), '2');
    assert.equal(await figure(page, 'scaling', 'batches', 'instances'), '1');
    await screenshot(page, 'queues');

    // The form: min_replicas 0 and max_replicas 1 clamp the figure.
    await page.fill('input[name=min_replicas]', '0');
    await page.fill('input[name=max_replicas]', '1');
    await page.click('form[aria-labelledby=autoscaling-title] button');
    await page.waitForURL(/max_replicas=1/);
    assert.equal(await figure(page, 'scaling', 'codeintel', 'instances'), '1');
    assert.equal(await figure(page, 'scaling', 'batches', 'instances'), '0');
    await page.goto(`${coordinator.url}/queues?jobs_per_instance_scaling=0`);
    assert.match(await page.locator('[role=alert]').innerText(), /jobs_per_instance_scaling/);
    assert.equal(await figure(page, 'scaling', 'codeintel', 'instances'), '1', 'the default 20 per instance');
  });

  it('rotates the executor secret: an executor with the old one keeps working for the grace period, then is refused', async () => {
    const { coordinator, page } = ui;
    executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, { EXECUTOR_RUNTIME: 'shell', EXECUTOR_QUEUE_POLL_INTERVAL: '200ms' });
    await until('the executor to heartbeat', async () => (await coordinator.admin('GET', '/api/executors')).executors.some((e: any) => e.active));

    await openSignedIn(page, `${coordinator.url}/configuration`);
    assert.match(await page.locator('[data-setting="executors.accessToken"]').innerText(), /^set \(\d+ characters, fingerprint [0-9a-f]{12}\)/);
    assert.ok(!(await page.content()).includes(ACCESS_TOKEN), 'the config secret is never on the page');
    await page.fill('input[name=grace]', `${GRACE_SECONDS}s`);
    await page.click('#rotate-form button[type=submit]');
    const secret = (await page.locator('#new-executor-secret').innerText()).trim();
    assert.match(secret, /^sfe_[0-9a-f]{64}$/);
    // Reloading the answer posts the form again: it is stale now, so nothing is rotated a second time.
    await page.reload();
    assert.match(await page.locator('[role=alert]').innerText(), /already rotated/);
    await page.goto(`${coordinator.url}/configuration`);
    assert.equal(await page.locator('#new-executor-secret').count(), 0, 'shown once');
    assert.equal(await page.locator('tr.executor-secret[data-accepted=true]').count(), 2, 'the new one and the config one in its grace period');
    await screenshot(page, 'configuration');

    // Within the grace period the running executor (old secret) still dequeues and finishes a job.
    const job = await coordinator.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'x', commands: ['echo still-trusted'] }] });
    let state = '';
    await until(`job ${job.id} to finish`, async () => ['completed', 'errored', 'failed'].includes((state = (await coordinator.admin('GET', `/api/jobs/${job.id}`)).state)));
    assert.equal(state, 'completed');

    // After it the old secret is refused on the shared-secret routes and the pre-token job routes; the new one works.
    const old = executorClient(coordinator.url, 'old-secret-executor', ACCESS_TOKEN);
    await until('the old secret to be refused', async () => (await old.dequeue('batches')).status === 401, (GRACE_SECONDS + 60) * 1000);
    const oldJobRoute = await old.post('/.executors/queue/batches/addExecutionLogEntry', { jobId: job.id, key: 'x', command: ['true'], startTime: new Date().toISOString() });
    assert.equal(oldJobRoute.status, 403);
    const fresh = executorClient(coordinator.url, 'new-secret-executor', secret);
    assert.ok([200, 204].includes((await fresh.dequeue('batches')).status));
    await page.reload();
    assert.match(await page.locator('[data-setting="executors.accessToken"]').innerText(), /retired by a rotation/);
    await executor.stop();
    executor = undefined;
  });

  it('creates and revokes admin tokens; revoking the session’s own token asks first and signs it out', async () => {
    const { coordinator, page, browser } = ui;
    const api = (token: string) => fetch(`${coordinator.url}/api/queues`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.status);
    const create = async (name: string) => {
      await openSignedIn(page, `${coordinator.url}/configuration`);
      await page.fill('#create-token-form input[name=name]', name);
      await page.click('#create-token-form button[type=submit]');
      return (await page.locator('#new-admin-token').innerText()).trim();
    };

    const other = await create('ci-bot');
    assert.equal(await api(other), 200);
    const row = page.locator('tr.admin-token', { hasText: 'ci-bot' });
    assert.ok(!(await row.innerText()).includes(other), 'the list never shows a token');
    const id = await row.getAttribute('data-token-id');
    await page.click(`button[aria-label="Revoke admin token ${id}"]`);
    await page.waitForURL(`${coordinator.url}/configuration#admin-tokens`);
    assert.equal(await page.locator('tr.admin-token', { hasText: 'ci-bot' }).count(), 0);
    assert.equal(await api(other), 401, 'a revoked token is refused by the JSON API');

    // Another browser session signed in with its own token revokes that token.
    const own = await create('laptop');
    const page2 = await browser.context.newPage();
    await browser.context.clearCookies(); // one persistent context: sign in afresh with the new token
    await page2.goto(`${coordinator.url}/sign-in?next=/configuration`);
    await signIn(page2, own);
    await page2.waitForURL(`${coordinator.url}/configuration`);
    const ownRow = page2.locator('tr.admin-token[data-own=true]');
    assert.match(await ownRow.innerText(), /laptop \(this session\)/);
    const ownId = await ownRow.getAttribute('data-token-id');
    await page2.click(`button[aria-label="Revoke admin token ${ownId}"]`);
    assert.match(await page2.locator('#confirm-revoke').innerText(), /signs you out/);
    assert.equal(await api(own), 200, 'asking revoked nothing');
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'sandfleet_session')!;
    await page2.click('#confirm-revoke button[type=submit]');
    await page2.waitForURL(/\/sign-in$/);
    assert.equal(await api(own), 401);
    // The session signed in with the revoked token ended with it.
    const replay = await page2.request.get(`${coordinator.url}/configuration`, { headers: { Cookie: `sandfleet_session=${cookie.value}` }, maxRedirects: 0 });
    assert.equal(replay.status(), 303);
    await page2.close();
  });

  it('answers 429 with Retry-After after repeated wrong tokens from one address; other addresses and right tokens before that are unaffected', async () => {
    const { coordinator } = ui;
    for (let i = 0; i < MAX_FAILURES - 1; i++) assert.equal((await signInFrom(coordinator.url, '127.0.0.1', `wrong-token-${i}-0123456789`)).status, 401);
    assert.equal((await signInFrom(coordinator.url, '127.0.0.1', ADMIN_TOKEN)).status, 303, 'a right token below the limit signs in');
    assert.equal((await signInFrom(coordinator.url, '127.0.0.1', 'wrong-token-last-0123456789')).status, 401);
    const refused = await signInFrom(coordinator.url, '127.0.0.1', ADMIN_TOKEN);
    assert.equal(refused.status, 429, 'over the limit even a right token is refused: guessing must stop');
    assert.ok(Number(refused.retryAfter) > 0 && Number(refused.retryAfter) <= 600, `Retry-After ${refused.retryAfter}`);
    assert.equal((await signInFrom(coordinator.url, '127.0.0.2', ADMIN_TOKEN)).status, 303, 'another client is unaffected');

    // The browser sees the message too.
    const page = await ui.browser.context.newPage();
    await ui.browser.context.clearCookies();
    await page.goto(`${coordinator.url}/sign-in`);
    await signIn(page, ADMIN_TOKEN);
    assert.match(await page.locator('[role=alert]').innerText(), /Too many wrong admin tokens/);
    await page.close();
    const metrics = await (await fetch(`${coordinator.url}/metrics`)).text();
    assert.match(metrics, /sandfleet_ui_sign_ins_total\{outcome="rate_limited"\} [1-9]/);
  });
});
