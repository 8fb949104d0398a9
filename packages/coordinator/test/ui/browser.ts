/** Debian's Chromium driven by playwright-core, with a fresh profile and no background traffic. */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { BackendName } from '@sandfleet/db';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { ADMIN_TOKEN, REPO_ROOT, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';

export const CHROMIUM = '/usr/bin/chromium';

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = makeTempDir('sandfleet-chromium-');
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    return {
      context,
      async close() {
        // Bounded: a wedged renderer must not hold the suite until its file timeout.
        await Promise.race([context.close(), delay(20_000)]);
        removeTempDir(profile);
      },
    };
  } catch (err) {
    removeTempDir(profile);
    throw err;
  }
}

/** Signs in on the sign-in page the browser is on (it returns to the page that sent it there). */
export async function signIn(page: Page, token = ADMIN_TOKEN): Promise<void> {
  await page.fill('#token', token);
  await page.click('button[type=submit]');
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Closes `page`, giving up after `ms`: Playwright's close has no timeout of its own. */
export async function closeWithin(page: Page, ms: number): Promise<void> {
  await Promise.race([page.close(), delay(ms)]);
}

/** Screenshots for the README are refreshed only when asked (SANDFLEET_UPDATE_SCREENSHOTS=1), so test runs leave the tree clean. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.SANDFLEET_UPDATE_SCREENSHOTS !== '1') return;
  const dir = path.join(REPO_ROOT, 'docs/screenshots');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/** A coordinator serving HTTP plus a browser with one page, as every browser test starts. */
export interface BrowserHarness {
  coordinator: CoordinatorServer;
  browser: TestBrowser;
  page: Page;
  close(): Promise<void>;
}

export async function startBrowserHarness(backend: BackendName, env: Record<string, string> = {}): Promise<BrowserHarness> {
  const coordinator = await startCoordinatorServer(backend, env);
  let browser: TestBrowser | undefined;
  try {
    browser = await launchBrowser();
    const page = await browser.context.newPage();
    const opened = browser;
    return {
      coordinator,
      browser,
      page,
      async close() {
        await opened.close();
        await coordinator.close();
      },
    };
  } catch (err) {
    await browser?.close();
    await coordinator.close();
    throw err;
  }
}

/** Opens `path`, signing in on the way when the browser has no session yet. */
export async function openSignedIn(page: Page, url: string, token = ADMIN_TOKEN): Promise<void> {
  await page.goto(url);
  if (new URL(page.url()).pathname === '/sign-in') {
    await signIn(page, token);
    await page.waitForURL(url);
  }
}

/** Waits for a job state through the JSON API. */
export async function waitForState(coordinator: CoordinatorServer, id: number, states: string[], timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await coordinator.admin('GET', `/api/jobs/${id}`);
    if (states.includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} stayed ${job.state}, expected ${states.join('|')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Waits until the page's log text matches `pattern`; resolves with its first group, if any. A
 * function, not a string: the page's CSP forbids eval. `globalThis` because the project's types have no DOM.
 */
export async function waitForLog(page: Page, pattern: RegExp, timeout = 90_000) {
  return page.waitForFunction(
    ({ source, flags }) => {
      const text: string = (globalThis as any).document.getElementById('log-entries').textContent ?? '';
      const match = new RegExp(source, flags).exec(text);
      return match ? (match[1] ?? true) : undefined;
    },
    { source: pattern.source, flags: pattern.flags },
    { timeout, polling: 'raf' },
  );
}

/** A new page of the browser, signed in to the coordinator (on its jobs list). */
export async function signedInPage(browser: TestBrowser, coordinatorUrl: string): Promise<Page> {
  const page = await browser.context.newPage();
  await page.goto(`${coordinatorUrl}/jobs`);
  await signIn(page);
  await page.waitForURL(`${coordinatorUrl}/jobs`);
  return page;
}
