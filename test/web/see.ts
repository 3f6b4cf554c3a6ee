import type { Locator } from 'playwright-core';

/**
 * Playwright's web-first assertions without @playwright/test: each polls its locator until the condition holds or
 * `timeoutMs` passes, then fails saying what it saw.
 */
export function see(loc: Locator, timeoutMs = 15_000) {
  const until = async (what: string, check: () => Promise<boolean>, saw: () => Promise<string>) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`expected ${loc} to have ${what}; saw ${await saw().catch((e) => String(e))}`);
  };
  const text = async () => (await loc.textContent({ timeout: 1000 })) ?? '';
  return {
    toHaveCount: (n: number) =>
      until(
        `${n} element(s)`,
        async () => (await loc.count()) === n,
        async () => `${await loc.count()}`,
      ),
    toContainText: (s: string) =>
      until(`text containing ${JSON.stringify(s)}`, async () => (await text()).includes(s), text),
    toHaveText: (s: string) => until(`text ${JSON.stringify(s)}`, async () => (await text()).trim() === s, text),
    toHaveValue: (s: string) =>
      until(
        `value ${JSON.stringify(s)}`,
        async () => (await loc.inputValue({ timeout: 1000 })) === s,
        () => loc.inputValue({ timeout: 1000 }),
      ),
    toHaveSelectedText: (re: RegExp) => {
      const option = loc.locator('option:checked');
      return until(
        `a selected option matching ${re}`,
        async () => re.test((await option.textContent({ timeout: 1000 })) ?? ''),
        async () => (await option.textContent({ timeout: 1000 })) ?? '',
      );
    },
    toBeVisible: () =>
      until(
        'visibility',
        () => loc.isVisible(),
        async () => 'hidden or missing',
      ),
  };
}
