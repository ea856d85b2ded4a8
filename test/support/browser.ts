// Debian's Chromium driven by playwright-core, for the dashboard tests. Each launch
// gets a fresh profile directory, removed when the test ends.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { waitFor } from './wait.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS_DIR = path.resolve(import.meta.dirname, '../../test-artifacts');

/** A persistent context on a fresh profile (playwright passes it as --user-data-dir). */
export async function launchChromium(t: Pick<TestContext, 'after'>): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  const profile = mkdtempSync(path.join(tmpdir(), 'pgward-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  // Close first: Chromium writes to its profile until it exits.
  t.after(async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
  });
  return browser;
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return path.join(ARTIFACTS_DIR, name);
}

/** Waits until the text of `selector` matches; returns it. Polls through the page, bounded by `timeoutMs`. */
export function waitForText(
  page: Page,
  selector: string,
  pattern: RegExp,
  timeoutMs: number,
): Promise<string> {
  return waitFor(
    async () => {
      const text = (await page.textContent(selector, { timeout: timeoutMs })) ?? '';
      return pattern.test(text) ? text : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `${selector} to match ${pattern}` },
  );
}
