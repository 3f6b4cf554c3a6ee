/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the whole stack: the API
 * serving the built app, Postgres, Redis, s3rver, and the scheduler running the real trainer. A student signs in,
 * uploads a folder, submits a tiny job, watches it finish with its charts, downloads the model and books GPUs; an
 * instructor grants hours and sees the student's usage; an admin sets a price. Screenshots: .gpulab/screenshots/.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type Stack, startStack } from '../e2e/harness';
import { launchChromium, screenshot } from './browser';
import { ensureWebBuild } from './build';
import { allowBrowserUploads, writeTinyDataset } from './fixtures';
import { see } from './see';

const PASSWORD = 'correct horse battery';
const STUDENT = 'ada@uni.edu';
const INSTRUCTOR = 'grace@uni.edu';
const ADMIN = 'root@uni.edu';

let stack: Stack;
let browser: Browser;
let folder: string;
let jobId = '';
let studentToken = '';
/** Uncaught errors in any page: a test fails if there were some. */
const pageErrors: string[] = [];

beforeAll(async () => {
  ensureWebBuild();
  [stack, browser, folder] = await Promise.all([
    startStack({ slots: 1, rateMicrosPerHour: 2_000_000 }),
    launchChromium(),
    writeTinyDataset('colours'),
  ]);
  await allowBrowserUploads(stack.s3.client, stack.s3.bucket, stack.apiUrl);
  ({ token: studentToken } = await stack.addUser({ email: STUDENT, grantSeconds: 3 * 3600, password: PASSWORD }));
  const { groupId } = await stack.addUser({
    email: INSTRUCTOR,
    grantSeconds: 1,
    role: 'instructor',
    password: PASSWORD,
  });
  await stack.addUser({ email: ADMIN, grantSeconds: 1, role: 'admin', password: PASSWORD });
  // room in the course budget for the instructor's grant
  await stack.db.group.update({ where: { id: groupId }, data: { budgetSeconds: 20 * 3600 } });
});
afterAll(async () => {
  await browser?.close();
  await stack?.close();
  if (folder) rmSync(path.dirname(folder), { recursive: true, force: true });
});

/** Signs in through the form; `keyboard` does it with the keyboard alone (Tab, type, Enter). */
async function signIn(
  email: string,
  o: { viewport?: { width: number; height: number }; keyboard?: boolean; shot?: string } = {},
): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport: o.viewport ?? { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('dialog', (d) => void d.accept());
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  await page.goto(stack.apiUrl);
  await page.getByRole('heading', { name: 'Sign in to gpulab' }).waitFor();
  if (o.shot) await screenshot(page, o.shot);
  if (o.keyboard) {
    await page.keyboard.press('Tab');
    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
  } else {
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.getByRole('heading', { level: 1, name: /Hello/ }).waitFor();
  return { ctx, page };
}

const nav = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name }).click();

describe('the dashboard, in Chromium, against the real stack', () => {
  it('a student signs in, uploads a folder, submits, watches the job finish and downloads the model', async () => {
    const { ctx, page } = await signIn(STUDENT, { shot: '00-sign-in' });
    await page.getByRole('img', { name: /cs-e2e: 0\.00 GPU-h used, 0\.00 GPU-h held, 3\.00 GPU-h free/ }).waitFor();

    // upload the folder through <input webkitdirectory>: hashed here, sent straight to S3
    await nav(page, 'New job');
    await page.locator('#folder-input').setInputFiles(folder);
    await page.getByText('12 images in 2 classes (blue, red)').waitFor();
    await page.getByText('1 file(s) will not be uploaded').waitFor();
    await page.getByRole('button', { name: 'Upload 12 files' }).click();
    await page.getByTestId('upload-done').filter({ hasText: '12 file(s) sent, 0 already on the server' }).waitFor();
    await see(page.getByLabel('Use one of my datasets', { exact: true })).toHaveSelectedText(/colours/);
    // the same files again: the server has them all, nothing is sent
    await page.locator('#folder-input').setInputFiles(folder);
    await page.getByRole('button', { name: 'Upload 12 files' }).click();
    await page
      .getByTestId('upload-done')
      .filter({ hasText: '0 file(s) sent, 12 already on the server (skipped)' })
      .waitFor();

    // hyperparameters (defaults shown), then the quote, then submit
    await see(page.getByLabel('Epochs', { exact: true })).toHaveValue('25');
    await page.getByLabel('Job name', { exact: true }).fill('colours web');
    await page.getByLabel('Epochs', { exact: true }).fill('2');
    await page.getByLabel('Image size (px)', { exact: true }).fill('32');
    await page.getByLabel('Batch size', { exact: true }).fill('4');
    await page.getByLabel('Max runtime (hours)', { exact: true }).fill('0.25');
    await page.getByRole('button', { name: 'Get a quote' }).click();
    const quote = page.getByRole('region', { name: 'Quote' });
    await quote.getByText('0.25 GPU-h').waitFor();
    await quote.getByText('now').waitFor();
    await screenshot(page, '02-submit-quote');
    await page.getByRole('button', { name: 'Submit job' }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    jobId = page.url().split('/').pop()!;

    // live: status, charts, logs; until it ends
    const status = page.getByTestId('job-status');
    await status.getByText('succeeded', { exact: true }).waitFor({ timeout: 180_000 });
    await see(status).toContainText('training finished');
    const loss = page.locator('figure', { has: page.getByText('Loss per epoch', { exact: true }) });
    await see(loss.locator('path.line')).toHaveCount(2);
    await see(loss.locator('circle')).toHaveCount(4);
    const acc = page.locator('figure', { has: page.getByText('Validation accuracy per epoch', { exact: true }) });
    await see(acc.locator('path.line')).toHaveCount(1);
    const matrix = page.locator('figure.confusion');
    await see(matrix.locator('rect')).toHaveCount(4);
    await see(matrix).toContainText('blue');
    await see(page.getByRole('log', { name: 'Job output' })).toContainText('Epoch 2/2');
    await see(page.getByRole('table', { name: 'Status changes' })).toContainText('training finished');
    await see(page.getByRole('table', { name: 'Cost per clock hour' })).toBeVisible();

    // the model, straight from S3 through a presigned link
    const link = page.getByRole('link', { name: 'weights.safetensors' });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    expect(download.suggestedFilename()).toBe('weights.safetensors');
    const file = await download.path();
    expect(readFileSync(file).length).toBeGreaterThan(1000);
    await see(page.getByRole('link', { name: 'labels.json' })).toBeVisible();
    await screenshot(page, '03-job');

    // a reload of the page's URL opens the same page (the API falls back to the app)
    await page.reload();
    await page.getByTestId('job-status').getByText('succeeded', { exact: true }).waitFor();

    await nav(page, 'Jobs');
    await see(page.getByRole('table', { name: /Jobs, page 1/ })).toContainText('colours web');
    await page.getByLabel('Status', { exact: true }).selectOption('FAILED');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('No jobs match.').waitFor();
    await page.getByRole('button', { name: 'Clear' }).click();
    await see(page.getByRole('table', { name: /Jobs, page 1/ })).toContainText('succeeded');
    await screenshot(page, '04-jobs');

    // book a GPU for tomorrow, then cancel it
    await nav(page, 'Reservations');
    await page.getByRole('button', { name: 'Book' }).click();
    await page.getByText(/Booked 1 × local/).waitFor();
    const bookings = page.getByRole('table', { name: /My reservations/ });
    await see(bookings).toContainText('booked');
    await see(page.locator('figure.timeline rect.booking')).toHaveCount(1);
    await screenshot(page, '05-reservations');
    await bookings.getByRole('button', { name: 'Cancel' }).click();
    await see(bookings).toContainText('cancelled');

    // a webhook for my jobs: its secret is shown once, a test ping appears among its deliveries
    await nav(page, 'Notifications');
    await page.getByLabel('URL').fill('https://hooks.example.org/gpulab');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await see(page.locator('code.secret')).toContainText('whsec_');
    const hook = page.getByRole('region', { name: 'webhook https://hooks.example.org/gpulab' });
    await hook.getByRole('button', { name: 'Send a test' }).click();
    await see(hook.getByRole('table', { name: /Deliveries/ })).toContainText('ping');
    await screenshot(page, '05b-notifications');

    // a job that cannot start (it needs more GPU-hours than I have): why it waits, cancel, retry
    const big = await stack.api<{ id: string }>(studentToken, 'POST', '/v1/jobs', {
      name: 'too big',
      dataset: { name: 'colours' },
      imageSize: 32,
      epochs: 1,
      resources: { maxHours: 6 },
    });
    expect(big.status).toBe(201);
    await page.goto(`${stack.apiUrl}/jobs/${big.body.id}`);
    await page.getByText(/Waiting \(quota\): needs 6\.00 GPU-h/).waitFor();
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await page.getByTestId('job-status').getByText('cancelled', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Retry as a new job' }).click();
    await page.waitForURL((u) => /\/jobs\/[0-9a-f-]{36}$/.test(u.pathname) && !u.pathname.endsWith(big.body.id));
    await page.getByText(/Waiting \(quota\)/).waitFor();

    await nav(page, 'Home');
    await see(page.getByRole('table', { name: 'My running and waiting jobs' })).toContainText('waiting: quota');
    await see(page.getByRole('table', { name: 'My most recent jobs' })).toContainText('colours web');
    await screenshot(page, '01-home');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to gpulab' }).waitFor();
    await ctx.close();

    // the same job on a phone-sized screen
    const phone = await signIn(STUDENT, { viewport: { width: 390, height: 844 } });
    await phone.page.goto(`${stack.apiUrl}/jobs/${jobId}`);
    await phone.page.getByTestId('job-status').getByText('succeeded', { exact: true }).waitFor();
    await phone.page.getByRole('button', { name: 'Menu' }).click();
    await see(phone.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' })).toBeVisible();
    await screenshot(phone.page, '06-job-phone');
    await phone.ctx.close();
    expect(pageErrors).toEqual([]);
  });

  it("an instructor grants hours, sees the student's usage and the queue; an admin sets a price", async () => {
    expect(jobId).not.toBe('');
    const { ctx, page } = await signIn(INSTRUCTOR);
    await nav(page, 'Groups');
    const members = page.getByRole('table', { name: /Members of cs-e2e/ });
    await see(members.locator(`tr[data-email="${STUDENT}"]`)).toContainText('3.00 GPU-h');
    await page.getByLabel('Member', { exact: true }).selectOption(STUDENT);
    await page.getByLabel('Hours', { exact: true }).fill('1.5');
    await page.getByRole('button', { name: 'Grant' }).click();
    await page.getByText(`Granted 1.50 GPU-h to ${STUDENT}: now 4.50 GPU-h granted`).waitFor();
    await see(members.locator(`tr[data-email="${STUDENT}"]`)).toContainText('4.50 GPU-h');
    await screenshot(page, '07-groups');

    await nav(page, 'Usage');
    const usage = page.getByRole('table', { name: /GPU usage in cs-e2e/ });
    const row = usage.locator('tbody tr', { hasText: STUDENT });
    await see(row).toHaveCount(1);
    await see(row.locator('td').nth(1)).toHaveText('1');
    const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
    const csv = await ctx.request.get(`${stack.apiUrl}${href}`);
    expect(csv.status()).toBe(200);
    expect(csv.headers()['content-type']).toMatch(/text\/csv/);
    expect(await csv.text()).toContain(STUDENT);
    await screenshot(page, '08-usage');

    await nav(page, 'Queue');
    const queue = page.getByRole('table', { name: /Waiting jobs/ });
    await see(queue).toContainText('waiting: quota');
    await see(queue).toContainText(STUDENT);
    await screenshot(page, '09-queue');
    await nav(page, 'Cluster');
    await see(page.getByRole('table', { name: /Capacity and prices/ })).toContainText('local');
    await ctx.close();

    const admin = await signIn(ADMIN, { keyboard: true });
    await nav(admin.page, 'Cluster');
    await admin.page.getByLabel('Price per GPU-hour of local', { exact: true }).fill('3.5');
    await admin.page.getByRole('button', { name: 'Save' }).click();
    await admin.page.getByText('Saved.').waitFor();
    const flavor = await stack.db.flavor.findUniqueOrThrow({ where: { name: 'local' } });
    expect(Number(flavor.rateMicros)).toBe(3_500_000);
    await screenshot(admin.page, '10-cluster-admin');
    await admin.ctx.close();
    expect(pageErrors).toEqual([]);
  });
});
