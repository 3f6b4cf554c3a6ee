import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@gpulab/testing';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Where the test run leaves screenshots of the main pages (gitignored with the rest of .gpulab/). */
export const SCREENSHOTS = path.join(REPO_ROOT, '.gpulab', 'screenshots');

/** Debian's Chromium, headless (GPULAB_CHROMIUM overrides the binary). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.GPULAB_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
