/**
 * The three runnable examples — examples/submit.sh (curl + jq), examples/submit.py (Python standard library) and
 * examples/submit.ts (the SDK) — each upload the bundled Fashion-MNIST sample, train one epoch at 32 px through the
 * whole stack (API, scheduler, real trainer, Postgres, Redis, s3rver) and end with the model downloaded.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@gpulab/testing';
import { type Stack, startStack } from './harness';

let stack: Stack;
let dir: string;
beforeAll(async () => {
  stack = await startStack({ slots: 1 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-examples-'));
});
afterAll(async () => {
  await stack.close();
  rmSync(dir, { recursive: true, force: true });
});

const EXAMPLES: [string, (data: string, out: string) => string[]][] = [
  ['submit.sh', (data) => ['bash', path.join(REPO_ROOT, 'examples', 'submit.sh'), data]],
  [
    'submit.py',
    (data, out) => [
      'python3',
      path.join(REPO_ROOT, 'examples', 'submit.py'),
      data,
      '--epochs',
      '1',
      '--image-size',
      '32',
      '--freeze',
      'full',
      '--max-hours',
      '0.25',
      '--out',
      out,
    ],
  ],
  [
    'submit.ts',
    (data, out) => [process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'examples', 'submit.ts'), data, out],
  ],
];

it.each(EXAMPLES)(
  '%s uploads, trains and downloads the model',
  async (name, argv) => {
    const student = await stack.addStudent(`${name.replace('.', '-')}@uni.edu`, 3600);
    const data = path.join(dir, `${name}-data`, 'fashion-mini');
    cpSync(path.join(REPO_ROOT, 'examples', 'datasets', 'fashion-mini'), data, { recursive: true });
    const out = path.join(dir, `${name}-model`);
    const [cmd, ...args] = argv(data, out);
    const { stdout } = await promisify(execFile)(cmd!, args, {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 240_000,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        GPULAB_URL: stack.apiUrl,
        GPULAB_TOKEN: student.token,
        EPOCHS: '1',
        IMAGE_SIZE: '32',
        FREEZE: 'full',
        MAX_HOURS: '0.25',
        OUT: out,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    expect(stdout).toMatch(/Epoch 1\/1 \| Train Loss: \d+\.\d+ \| Val Loss: \d+\.\d+ \| Val Acc: \d+(\.\d+)?%/);
    expect(stdout).toMatch(/SUCCEEDED/);
    for (const f of ['weights.safetensors', 'labels.json', 'preprocessing.json', 'tfjs/model.json'])
      expect({ f, exists: existsSync(path.join(out, f)) }).toEqual({ f, exists: true });
  },
  300_000,
);
