// The dashboard's browser tests drive a real headless Chromium (Debian's `chromium` package) through
// playwright-core. Where is it, and what to say when it is missing: the tests then skip LOUDLY, naming how
// to install it, and never pass silently. Screenshots go to a folder the tests print.
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ROOT } from './harness.ts';

/** Where a Chromium may be: Debian's and other distributions' names ($CHROMIUM_PATH, when set, alone). */
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

export const INSTALL_HINT = `install it with \`apt-get update && apt-get install -y chromium\` (Debian; .ci/run does this), or point CHROMIUM_PATH at a Chromium or Chrome binary${process.env.CHROMIUM_PATH ? ` (CHROMIUM_PATH=${process.env.CHROMIUM_PATH} is not an executable)` : ''}`;

export function findChromium(): string | undefined {
  const env = process.env.CHROMIUM_PATH;
  for (const path of env ? [env] : CANDIDATES) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Prints a banner on stderr that no one scrolling past a test log can miss. */
export function shout(lines: string[]): void {
  const bar = '!'.repeat(100);
  process.stderr.write(`\n${bar}\n${lines.map((l) => `!!! ${l}`).join('\n')}\n${bar}\n\n`);
}

/** The screenshots' folder: $SHAREDLLM_SCREENSHOTS, else .scratch/dashboard-screenshots (git-ignored). */
export function screenshotDir(): string {
  const dir = process.env.SHAREDLLM_SCREENSHOTS ?? join(ROOT, '.scratch', 'dashboard-screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function launch(executablePath: string): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
}

/** A page that fails the test on any script error or console error, collected in `errors`. */
export async function openPage(browser: Browser, width = 1280, height = 860): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A 404 for a route a feature will add is what the page expects (it says "not available").
    if (message.type() === 'error' && !/status of 404/.test(message.text())) errors.push(`console: ${message.text()}`);
  });
  return { page, errors };
}

/** The page fits a phone's width: no horizontal scrolling of the whole page. */
export async function horizontalOverflow(page: Page): Promise<number> {
  return Number(await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'));
}
