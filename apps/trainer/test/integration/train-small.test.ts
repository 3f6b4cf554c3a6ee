/**
 * End to end: an embedded S3 (s3rver) with a generated 3-class ImageFolder dataset of 32×32 PNGs, the trainer run as
 * a child process (`node --import tsx apps/trainer/src/main.ts`) on the wasm backend, an HTTP server standing in
 * for the API's events endpoint. Checks exit codes, the seed lines, checkpoints, latest.json, model files, metrics,
 * events; resumption after SIGKILL and after SIGTERM (exit 12) ends with the same metrics as an uninterrupted run;
 * `cli predict` reads the model back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TrainerExit } from '@gpulab/core';
import {
  createS3Client,
  EMBEDDED_S3_CREDENTIALS,
  type EmbeddedS3,
  ensureBucket,
  getJsonOrNull,
  getObjectBytes,
  layout,
  listObjects,
  startEmbeddedS3,
} from '@gpulab/storage';
import { parseSafetensors } from '../../src/model/safetensors';
import { TINY_CLASSES, uploadTinyDataset } from '../helpers/tiny-dataset';
import { type Finished, runNode, startTrainer, waitFor } from '../helpers/trainer-process';

const BUCKET = 'gpulab';
const SEED_LINE = /^Epoch (\d+)\/(\d+) \| Train Loss: \d+\.\d{4} \| Val Loss: \d+\.\d{4} \| Val Acc: \d+\.\d{2}%$/;

interface MetricsJson {
  epochs: {
    epoch: number;
    attempt: number;
    trainLoss: number;
    valLoss: number;
    valAcc: number;
    confusion: number[][];
  }[];
  bestEpoch: number;
  classes: string[];
}

describe('trainer end to end (wasm, 32 px)', () => {
  let dir: string;
  let s3server: EmbeddedS3;
  let s3: ReturnType<typeof createS3Client>;
  let api: Server;
  let apiUrl: string;
  const events = new Map<string, { auth: string | undefined; body: Record<string, unknown> }[]>();
  let env: (jobId: string, attempt: number, spec?: Record<string, unknown>) => Record<string, string>;

  const spec = (epochs: number) => ({
    dataset: { uri: `s3://${BUCKET}/datasets/tiny` },
    imageSize: 32,
    epochs,
    batchSize: 8,
    freeze: { mode: 'full' },
    optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 },
    seed: 3,
    backend: 'wasm',
  });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gpulab-trainer-it-'));
    s3server = await startEmbeddedS3({ directory: path.join(dir, 's3') });
    s3 = createS3Client({
      endpoint: s3server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      ...EMBEDDED_S3_CREDENTIALS,
    });
    await ensureBucket(s3, BUCKET);
    await uploadTinyDataset(s3, BUCKET, 'datasets/tiny/');
    api = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        const m = /^\/v1\/internal\/jobs\/([^/]+)\/events$/.exec(req.url ?? '');
        if (req.method !== 'POST' || !m) {
          res.statusCode = 404;
          res.end();
          return;
        }
        const list = events.get(m[1]!) ?? [];
        list.push({ auth: req.headers.authorization, body: JSON.parse(body) as Record<string, unknown> });
        events.set(m[1]!, list);
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    env = (jobId, attempt, s = spec(2)) => ({
      GPULAB_JOB_ID: jobId,
      GPULAB_ATTEMPT: String(attempt),
      GPULAB_JOB_SPEC: JSON.stringify(s),
      GPULAB_API_URL: apiUrl,
      GPULAB_JOB_TOKEN: `token-${jobId}`,
      GPULAB_S3_ENDPOINT: s3server.endpoint,
      GPULAB_S3_REGION: 'us-east-1',
      GPULAB_S3_BUCKET: BUCKET,
      GPULAB_S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      GPULAB_S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
      GPULAB_S3_FORCE_PATH_STYLE: 'true',
    });
  });

  afterAll(async () => {
    await new Promise((r) => api?.close(r));
    await s3server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const seedLines = (f: Finished) => f.stdout.split('\n').filter((l) => l.length > 0);
  const metricsOf = async (jobId: string) => getJsonOrNull<MetricsJson>(s3, BUCKET, layout.metrics(jobId));
  const keys = async (prefix: string) => (await listObjects(s3, BUCKET, prefix)).map((o) => o.key).sort();
  const explain = (f: Finished) =>
    `exit ${f.code} / ${f.signal}\nstdout:\n${f.stdout}\nstderr:\n${f.stderr.slice(-4000)}`;

  function expectSameMetrics(a: MetricsJson, b: MetricsJson): void {
    expect(a.epochs.map((e) => e.epoch)).toEqual(b.epochs.map((e) => e.epoch));
    a.epochs.forEach((e, i) => {
      const o = b.epochs[i]!;
      expect(Math.abs(e.trainLoss - o.trainLoss)).toBeLessThan(1e-4);
      expect(Math.abs(e.valLoss - o.valLoss)).toBeLessThan(1e-4);
      expect(Math.abs(e.valAcc - o.valAcc)).toBeLessThan(1e-4);
      expect(e.confusion).toEqual(o.confusion);
    });
    expect(a.bestEpoch).toBe(b.bestEpoch);
  }

  it('trains 2 epochs: exit 0, two seed lines, checkpoints, latest.json, model and metrics, events', async () => {
    const run = await startTrainer(env('small', 1)).done;
    expect({ code: run.code, log: run.code === 0 ? '' : explain(run) }).toEqual({ code: 0, log: '' });
    const lines = seedLines(run);
    expect(lines).toHaveLength(2);
    for (const [i, line] of lines.entries()) {
      expect(line).toMatch(SEED_LINE);
      expect(line.startsWith(`Epoch ${i + 1}/2 |`)).toBe(true);
    }

    for (const e of [1, 2])
      expect(await keys(layout.checkpointPrefix('small', 1, e))).toEqual(
        ['optimizer.safetensors', 'state.json', 'weights.safetensors'].map(
          (f) => layout.checkpointPrefix('small', 1, e) + f,
        ),
      );
    expect(await getJsonOrNull(s3, BUCKET, layout.latestCheckpoint('small'))).toEqual({
      attempt: 1,
      epoch: 2,
      prefix: layout.checkpointPrefix('small', 1, 2),
    });
    const model = layout.modelPrefix('small');
    expect(await keys(model)).toEqual(
      [
        'labels.json',
        'model.json',
        'preprocessing.json',
        'tfjs/group1-shard1of1.bin',
        'tfjs/model.json',
        'weights.safetensors',
      ].map((f) => model + f),
    );
    expect(await getJsonOrNull(s3, BUCKET, `${model}labels.json`)).toEqual([...TINY_CLASSES]);
    expect(await getJsonOrNull(s3, BUCKET, `${model}preprocessing.json`)).toMatchObject({ resize: 37, crop: 32 });
    expect(await getJsonOrNull(s3, BUCKET, `${model}model.json`)).toMatchObject({
      arch: 'resnet18',
      numClasses: 3,
      imageSize: 32,
    });
    const weights = parseSafetensors(await getObjectBytes(s3, BUCKET, `${model}weights.safetensors`));
    expect(weights.tensors.get('fc.weight')!.shape).toEqual([3, 512]);
    expect(weights.tensors.get('conv1.weight')!.shape).toEqual([64, 3, 7, 7]);
    expect(weights.tensors.has('bn1.num_batches_tracked')).toBe(true);

    const metrics = (await metricsOf('small'))!;
    expect(metrics.epochs).toHaveLength(2);
    expect(metrics.classes).toEqual([...TINY_CLASSES]);
    for (const [i, line] of lines.entries())
      expect(line).toContain(`Train Loss: ${metrics.epochs[i]!.trainLoss.toFixed(4)}`);

    const got = events.get('small') ?? [];
    expect(got.every((e) => e.auth === 'Bearer token-small')).toBe(true);
    const types = got.map((e) => e.body['type']);
    expect(types[0]).toBe('started');
    expect(got[0]!.body).toEqual({ type: 'started', attempt: 1, backend: 'wasm' });
    expect(got[1]!.body).toEqual({
      type: 'dataset',
      classes: [...TINY_CLASSES],
      trainCount: 24,
      valCount: 12,
      skipped: 0,
    });
    expect(types.filter((t) => t === 'epoch')).toHaveLength(2);
    expect(types.filter((t) => t === 'checkpoint')).toHaveLength(2);
    expect(got.filter((e) => e.body['type'] === 'artifact' && e.body['kind'] === 'model')).toHaveLength(6);
    expect(got.at(-1)!.body).toMatchObject({ type: 'finished', bestEpoch: metrics.bestEpoch });

    // The CLI reads the model back from S3 and classifies a training image.
    const png = path.join(dir, 'solid.png');
    writeFileSync(png, await getObjectBytes(s3, BUCKET, 'datasets/tiny/train/solid/0.png'));
    const predicted = await runNode(
      'apps/trainer/src/cli.ts',
      ['predict', '--model', `s3://${BUCKET}/${model}`, '--top', '3', png],
      env('small', 1),
    ).done;
    expect({ code: predicted.code, err: predicted.code === 0 ? '' : predicted.stderr }).toEqual({ code: 0, err: '' });
    const answer = JSON.parse(predicted.stdout.trim()) as {
      image: string;
      top: { label: string; probability: number }[];
    };
    expect(answer.image).toBe(png);
    expect(answer.top.map((t) => t.label).sort()).toEqual([...TINY_CLASSES].sort());
    expect(answer.top.reduce((s, t) => s + t.probability, 0)).toBeCloseTo(1, 4);
  });

  describe('resumption', () => {
    let baseline: MetricsJson;

    beforeAll(async () => {
      const run = await startTrainer(env('baseline', 1, spec(3))).done;
      if (run.code !== 0) throw new Error(explain(run));
      baseline = (await metricsOf('baseline'))!;
      expect(baseline.epochs).toHaveLength(3);
    });

    it('after SIGKILL, attempt 2 resumes from latest.json and ends with the uninterrupted metrics', async () => {
      const first = startTrainer(env('killed', 1, spec(3)));
      // s3rver writes an object in place (truncate, then stream): a poll that races the trainer's PUT of latest.json
      // can read it empty or cut short. S3's PUTs are atomic, so that only means "not written yet".
      const written = () =>
        getJsonOrNull(s3, BUCKET, layout.latestCheckpoint('killed')).catch((e: unknown) => {
          if (e instanceof SyntaxError) return null;
          throw e;
        });
      await waitFor(async () => (await written()) !== null, 120_000);
      first.child.kill('SIGKILL');
      const killed = await first.done;
      expect(killed.signal).toBe('SIGKILL');
      expect(await metricsOf('killed')).toBeNull();

      const second = await startTrainer(env('killed', 2, spec(3))).done;
      expect({ code: second.code, log: second.code === 0 ? '' : explain(second) }).toEqual({ code: 0, log: '' });
      expect(second.stderr).toContain('"msg":"resuming"');
      const resumed = (await metricsOf('killed'))!;
      expectSameMetrics(resumed, baseline);
      expect(resumed.epochs[0]!.attempt).toBe(1);
      expect(resumed.epochs[2]!.attempt).toBe(2);
      expect(await keys(layout.checkpointPrefix('killed', 2, 3))).toHaveLength(3);
    });

    it('after SIGTERM: checkpoint, exit 12, then attempt 2 finishes with the uninterrupted metrics', async () => {
      const first = startTrainer(env('termed', 1, spec(3)));
      await waitFor(() => first.stdout().includes('Epoch 1/3'), 120_000, 20);
      first.child.kill('SIGTERM');
      const stopped = await first.done;
      expect({ code: stopped.code, log: stopped.code === TrainerExit.STOPPED ? '' : explain(stopped) }).toEqual({
        code: TrainerExit.STOPPED,
        log: '',
      });
      const latest = await getJsonOrNull<{ attempt: number; epoch: number }>(
        s3,
        BUCKET,
        layout.latestCheckpoint('termed'),
      );
      expect(latest?.attempt).toBe(1);
      expect(await metricsOf('termed')).toBeNull();

      const second = await startTrainer(env('termed', 2, spec(3))).done;
      expect({ code: second.code, log: second.code === 0 ? '' : explain(second) }).toEqual({ code: 0, log: '' });
      expectSameMetrics((await metricsOf('termed'))!, baseline);
    });
  });

  it('exits USER_ERROR for an invalid spec or dataset, INFRASTRUCTURE_ERROR when storage is unreachable', async () => {
    const badSpec = await startTrainer({
      ...env('bad-spec', 1),
      GPULAB_JOB_SPEC: JSON.stringify({ dataset: { uri: 'nope' } }),
    }).done;
    expect(badSpec.code).toBe(TrainerExit.USER_ERROR);
    expect(badSpec.stderr).toContain('dataset.uri');
    expect(events.get('bad-spec')?.map((e) => e.body)).toEqual([
      { type: 'failed', kind: 'user_error', message: expect.stringContaining('dataset.uri') },
    ]);

    const noData = await startTrainer(
      env('no-data', 1, { ...spec(1), dataset: { uri: `s3://${BUCKET}/datasets/missing` } }),
    ).done;
    expect(noData.code).toBe(TrainerExit.USER_ERROR);
    expect(noData.stderr).toContain('DatasetError');

    const noS3 = await startTrainer({ ...env('no-s3', 1), GPULAB_S3_ENDPOINT: 'http://127.0.0.1:9' }).done;
    expect(noS3.code).toBe(TrainerExit.INFRASTRUCTURE_ERROR);
    expect(events.get('no-s3')?.at(-1)?.body).toMatchObject({ type: 'failed', kind: 'infrastructure_error' });
    expect(events.get('no-data')?.at(-1)?.body).toMatchObject({ type: 'failed', kind: 'user_error' });
  });
});
