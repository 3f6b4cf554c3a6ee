/**
 * The instructor guide's runnable examples run: every ```sh runnable block, in order and in one bash process (so a
 * later block sees an earlier block's variables), against a live API on a fresh database, with only GPULAB_URL and
 * an administrator's token given. The student guide's blocks run against the whole stack in test/e2e.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '@gpulab/testing';
import { startTestApi, type TestApi } from '../../apps/api/test/helpers/app';
import { runBlocks, runnableBlocks } from '../helpers/runnable';

let t: TestApi;
let adminToken: string;

beforeAll(async () => {
  t = await startTestApi({ name: 'docs', listen: true });
  adminToken = (await t.user('admin@uni.edu', { role: 'admin', group: 'staff', hours: 0 })).token;
});
afterAll(() => t.close());

it('docs/instructor-guide.md: every runnable block runs', async () => {
  const guide = 'docs/instructor-guide.md';
  const blocks = runnableBlocks(readFileSync(path.join(REPO_ROOT, guide), 'utf8'));
  expect(blocks.length).toBeGreaterThan(3);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-docs-'));
  try {
    const stdout = await runBlocks(guide, blocks, {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, GPULAB_URL: t.url, GPULAB_ADMIN_TOKEN: adminToken },
      timeoutMs: 60_000,
    });
    expect(stdout.match(/^::block \d+$/gm)).toHaveLength(blocks.length);
    expect(stdout).toMatch(/prof@uni\.edu is instructor/);
    expect(stdout).toMatch(/ada@uni\.edu\t10 h granted/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
