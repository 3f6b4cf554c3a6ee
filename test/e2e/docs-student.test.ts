/**
 * The student guide's runnable examples run as written against the whole stack (API, scheduler, the real trainer,
 * Postgres, Redis, s3rver) with the `gpulab` command on PATH: quota, quote, submit a folder and follow it to the end,
 * list, status, download and predict. The folder is the bundled Fashion-MNIST sample.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '@gpulab/testing';
import { runBlocks, runnableBlocks } from '../helpers/runnable';
import { type Stack, startStack } from './harness';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ slots: 1 });
});
afterAll(async () => {
  await stack.close();
});

it('docs/student-guide.md: every runnable block runs', async () => {
  const guide = 'docs/student-guide.md';
  const blocks = runnableBlocks(readFileSync(path.join(REPO_ROOT, guide), 'utf8'));
  expect(blocks.length).toBeGreaterThanOrEqual(3);
  const student = await stack.addStudent('reader@uni.edu', 3600);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-student-'));
  const dataset = path.join(dir, 'fashion-mini');
  cpSync(path.join(REPO_ROOT, 'examples', 'datasets', 'fashion-mini'), dataset, { recursive: true });
  try {
    const stdout = await runBlocks(guide, blocks, {
      cwd: dir,
      env: {
        PATH: `${path.join(REPO_ROOT, 'apps', 'cli', 'bin')}:${process.env.PATH}`,
        HOME: dir,
        XDG_CONFIG_HOME: path.join(dir, 'config'),
        XDG_STATE_HOME: path.join(dir, 'state'),
        XDG_CACHE_HOME: path.join(dir, 'cache'),
        GPULAB_URL: stack.apiUrl,
        GPULAB_TOKEN: student.token,
        DATASET: dataset,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
      timeoutMs: 240_000,
    });
    expect(stdout.match(/^::block \d+$/gm)).toHaveLength(blocks.length);
    expect(stdout).toMatch(/Epoch 1\/1 \| Train Loss: \d+\.\d{4} \| Val Loss: \d+\.\d{4} \| Val Acc: \d+\.\d{2}%/);
    expect(stdout).toMatch(/SUCCEEDED/);
    expect(stdout).toMatch(/weights\.safetensors/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);
