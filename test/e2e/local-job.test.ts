import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { listObjects, putObject, uploadImageFolder } from '@gpulab/storage';
import { REPO_ROOT } from '@gpulab/testing';
import { type Stack, startStack } from './harness';

const FASHION_MINI = path.join(REPO_ROOT, 'examples', 'datasets', 'fashion-mini');

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ slots: 1, rateMicrosPerHour: 2_000_000 });
  await uploadImageFolder(stack.s3.client, stack.s3.bucket, 'datasets/fashion-mini', FASHION_MINI);
});
afterAll(async () => stack?.close());

const spec = (overrides: Record<string, unknown> = {}) => ({
  name: 'fashion-mini e2e',
  dataset: { uri: 's3://gpulab-test/datasets/fashion-mini' },
  imageSize: 32,
  epochs: 2,
  batchSize: 16,
  freeze: { mode: 'full' },
  optimizer: { type: 'sgd', lr: 0.01 },
  backend: 'wasm',
  resources: { maxHours: 0.25 },
  ...overrides,
});

type JobBody = {
  id: string;
  status: string;
  statusMessage: string | null;
  pending: { reason: string; message: string } | null;
  metrics: Array<{ epoch: number; valAcc: number }>;
  artifacts: Array<{ kind: string; key: string }>;
  cost: { gpuSeconds: number; amountMicros: number; ledger: Array<{ gpuSeconds: number; amountMicros: number }> };
  transitions: Array<{ from: string | null; to: string; reason: string }>;
};

describe('a fine-tune job end to end (local launcher, real Postgres, Redis, s3rver, trainer)', () => {
  it('runs to SUCCEEDED, stores checkpoints and the model, and charges exactly the ledger', async () => {
    const s = await stack.addStudent('ada@uni.edu', 3600);
    const submit = await stack.api<JobBody>(s.token, 'POST', '/v1/jobs', spec());
    expect(submit.status).toBe(201);
    expect(submit.body.status).toBe('QUEUED');
    const job = (await stack.waitForStatus(
      s.token,
      submit.body.id,
      ['SUCCEEDED', 'FAILED', 'CANCELLED'],
      200_000,
    )) as unknown as JobBody;
    expect(job.statusMessage).toBe('training finished');
    expect(job.status).toBe('SUCCEEDED');
    expect(job.transitions.map((t) => t.to)).toEqual(['QUEUED', 'ADMITTED', 'LAUNCHING', 'RUNNING', 'SUCCEEDED']);
    expect(job.metrics.map((m) => m.epoch)).toEqual([1, 2]);
    for (const m of job.metrics) expect(m.valAcc).toBeGreaterThanOrEqual(0);

    const keys = (await listObjects(stack.s3.client, stack.s3.bucket, `jobs/${job.id}/`)).map((o) => o.key);
    expect(keys.filter((k) => k.includes('/checkpoints/epoch-1/')).length).toBeGreaterThan(0);
    expect(keys.filter((k) => k.includes('/checkpoints/epoch-2/')).length).toBeGreaterThan(0);
    expect(keys).toContain(`jobs/${job.id}/checkpoints/latest.json`);
    expect(keys).toEqual(
      expect.arrayContaining([`jobs/${job.id}/model/weights.safetensors`, `jobs/${job.id}/model/labels.json`]),
    );
    expect(job.artifacts.some((a) => a.kind === 'model')).toBe(true);

    // money: ledger rows sum to the job's cost; the quota is debited by exactly that, and the hold is released
    expect(job.cost.ledger.length).toBeGreaterThan(0);
    const ledgerSeconds = job.cost.ledger.reduce((a, r) => a + r.gpuSeconds, 0);
    const ledgerAmount = job.cost.ledger.reduce((a, r) => a + r.amountMicros, 0);
    expect(ledgerSeconds).toBe(job.cost.gpuSeconds);
    expect(ledgerSeconds).toBeGreaterThan(0);
    expect(ledgerAmount).toBe(job.cost.amountMicros);
    const row = await stack.db.job.findUniqueOrThrow({ where: { id: job.id } });
    expect(row.usedSeconds).toBe(ledgerSeconds);
    expect(Number(row.costMicros)).toBe(ledgerAmount);
    const m = await stack.db.membership.findUniqueOrThrow({ where: { id: s.membershipId } });
    expect(m).toMatchObject({ grantedSeconds: 3600, heldSeconds: 0, usedSeconds: ledgerSeconds });
    // the command line shows the same job
    const { stdout: cli } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'apps/cli/src/main.ts', 'status', job.id],
      { cwd: REPO_ROOT, env: { ...process.env, GPULAB_URL: stack.apiUrl, GPULAB_TOKEN: s.token }, encoding: 'utf8' },
    );
    expect(cli).toMatch(/SUCCEEDED/);
    expect(cli).toMatch(/Epoch 2\/2 \| Train Loss: \d+\.\d{4} \| Val Loss: \d+\.\d{4} \| Val Acc: \d+\.\d{2}%/);
    const me = await stack.api<{ quotas: Array<{ usedHours: number; heldHours: number }> }>(s.token, 'GET', '/v1/me');
    expect(me.body.quotas[0]).toMatchObject({ heldHours: 0, usedHours: ledgerSeconds / 3600 });

    // the trainer's output: served from the live log bus, and archived to S3 when the attempt ended
    const auth = { authorization: `Bearer ${s.token}` };
    const text = await (await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/logs`, { headers: auth })).text();
    expect(text).toMatch(/Epoch 2\/2 \| Train Loss/);
    let archived: string[] = [];
    for (let i = 0; i < 50 && archived.length === 0; i++) {
      archived = (await listObjects(stack.s3.client, stack.s3.bucket, `jobs/${job.id}/logs/`)).map((o) => o.key);
      if (archived.length === 0) await new Promise((r) => setTimeout(r, 100)); // archived off the control loop
    }
    expect(archived).toEqual([`jobs/${job.id}/logs/attempt-1.log`]);
    const sse = await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/logs?follow=1`, { headers: auth });
    expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = await sse.text();
    expect(events).toMatch(/data: .*Epoch 1\/2/);
    expect(events).toMatch(/event: end\ndata: \{"status":"SUCCEEDED"\}/);

    // the model, downloadable straight from S3 through presigned URLs
    const artifacts = (await (
      await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/artifacts`, { headers: auth })
    ).json()) as {
      model: { path: string; bytes: number; url: string }[];
      logs: { path: string }[];
    };
    const paths = artifacts.model.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['weights.safetensors', 'labels.json', 'tfjs/model.json']));
    expect(artifacts.logs.map((f) => f.path)).toEqual(['attempt-1.log']);
    const labels = artifacts.model.find((f) => f.path === 'labels.json')!;
    const download = await fetch(labels.url);
    expect(download.status).toBe(200);
    const bytes = Buffer.from(await download.arrayBuffer());
    expect(bytes.length).toBe(labels.bytes);
    expect(JSON.parse(bytes.toString('utf8'))).toEqual(expect.anything());
    const stranger = await stack.addStudent('eve@uni.edu', 60);
    const denied = await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/artifacts`, {
      headers: { authorization: `Bearer ${stranger.token}` },
    });
    expect(denied.status).toBe(404);
  });

  it.each([
    ['no train/ folder', 'bad-no-train', { 'val/a/x.png': 'png' }, /train/],
    ['a single class', 'bad-one-class', { 'train/only/x.png': 'png', 'val/only/x.png': 'png' }, /class/],
  ])('fails fast, uncharged, on a dataset with %s', async (_label, prefix, files, message) => {
    const s = await stack.addStudent(`bad-${prefix}@uni.edu`, 3600);
    const png = await tinyPng();
    for (const [key] of Object.entries(files))
      await putObject(stack.s3.client, stack.s3.bucket, `datasets/${prefix}/${key}`, png);
    const submit = await stack.api<JobBody>(
      s.token,
      'POST',
      '/v1/jobs',
      spec({ dataset: { uri: `s3://gpulab-test/datasets/${prefix}` } }),
    );
    expect(submit.status).toBe(201);
    const job = (await stack.waitForStatus(
      s.token,
      submit.body.id,
      ['SUCCEEDED', 'FAILED'],
      120_000,
    )) as unknown as JobBody;
    expect(job.status).toBe('FAILED');
    expect(job.transitions.at(-1)?.reason).toBe('user_error');
    expect(job.statusMessage).toMatch(message);
    expect(job.cost.gpuSeconds).toBe(0);
    const m = await stack.db.membership.findUniqueOrThrow({ where: { id: s.membershipId } });
    expect(m).toMatchObject({ heldSeconds: 0, usedSeconds: 0 });
  });

  it('fails fast, uncharged, on a missing dataset, naming its URI', async () => {
    const s = await stack.addStudent('missing@uni.edu', 3600);
    const submit = await stack.api<JobBody>(
      s.token,
      'POST',
      '/v1/jobs',
      spec({ dataset: { uri: 's3://gpulab-test/datasets/nope' } }),
    );
    const job = (await stack.waitForStatus(
      s.token,
      submit.body.id,
      ['SUCCEEDED', 'FAILED'],
      120_000,
    )) as unknown as JobBody;
    expect(job.status).toBe('FAILED');
    expect(job.statusMessage).toMatch(/s3:\/\/gpulab-test\/datasets\/nope/);
    expect(job.cost.gpuSeconds).toBe(0);
  });

  it('fails fast, uncharged, when an unreadable image leaves a class empty, naming the file', async () => {
    const s = await stack.addStudent('corrupt@uni.edu', 3600);
    const png = await tinyPng();
    const put = (key: string, body: Buffer | string) =>
      putObject(stack.s3.client, stack.s3.bucket, `datasets/corrupt/${key}`, body);
    await put('train/cat/1.png', png);
    await put('train/dog/broken.png', 'this is not a PNG');
    await put('val/cat/1.png', png);
    await put('val/dog/1.png', png);
    const submit = await stack.api<JobBody>(
      s.token,
      'POST',
      '/v1/jobs',
      spec({ dataset: { uri: 's3://gpulab-test/datasets/corrupt' } }),
    );
    const job = (await stack.waitForStatus(
      s.token,
      submit.body.id,
      ['SUCCEEDED', 'FAILED'],
      120_000,
    )) as unknown as JobBody;
    expect(job.status).toBe('FAILED');
    expect(job.transitions.at(-1)?.reason).toBe('user_error');
    expect(job.statusMessage).toMatch(/dog/);
    expect(job.cost.gpuSeconds).toBe(0);
  });

  it('does not admit a job beyond the remaining quota, and says why', async () => {
    const s = await stack.addStudent('poor@uni.edu', 600); // 10 GPU-minutes
    const submit = await stack.api<JobBody>(s.token, 'POST', '/v1/jobs', spec({ resources: { maxHours: 1 } }));
    expect(submit.status).toBe(201);
    await new Promise((r) => setTimeout(r, 1500));
    const res = await stack.api<JobBody>(s.token, 'GET', `/v1/jobs/${submit.body.id}`);
    expect(res.body.status).toBe('QUEUED');
    expect(res.body.pending?.reason).toBe('quota');
    expect(res.body.pending?.message).toMatch(
      /needs 1\.00 GPU-h \(1 GPU × 1\.00 h\); 0\.17 GPU-h free of 0\.17 granted/,
    );
    const m = await stack.db.membership.findUniqueOrThrow({ where: { id: s.membershipId } });
    expect(m.heldSeconds).toBe(0);
    const cancel = await stack.api<JobBody>(s.token, 'POST', `/v1/jobs/${submit.body.id}/cancel`);
    expect(cancel.body.status).toBe('CANCELLED');
  });
});

async function tinyPng(): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 10, b: 10 } } })
    .png()
    .toBuffer();
}
