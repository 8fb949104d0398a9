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
        await context.close();
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
