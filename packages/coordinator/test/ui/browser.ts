/** Debian's Chromium driven by playwright-core, with a fresh profile and no background traffic. */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { ADMIN_TOKEN, REPO_ROOT } from '@sandfleet/test-helpers/coordinator';

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
