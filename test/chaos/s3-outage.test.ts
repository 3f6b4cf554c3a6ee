/**
 * Chaos: S3 goes away in the middle of writing a checkpoint. The real trainer (a child process, wasm backend, a
 * generated 3-class ImageFolder of 32×32 PNGs) talks to a private s3rver through a TCP proxy that reads the request
 * lines: the moment attempt 1 starts uploading epoch 2's optimizer state — its weights are already stored, its
 * state.json and latest.json are not — every connection is reset and the s3rver is stopped; it is started again on
 * the same port and folder once the attempt has given up. The attempt must end with exit 11 (infrastructure error,
 * retried by the scheduler) and leave latest.json pointing at epoch 1, the last complete checkpoint; attempt 2 (the
 * scheduler's retry: same job, GPULAB_ATTEMPT=2) resumes from epoch 1 — never from the torn epoch-2 folder — and ends
 * with the uninterrupted run's metrics.
 *
 * A second case: an S3 that accepts connections and never answers (a hung server, a partition dropping packets).
 * The client (packages/storage createS3Client, used by the trainer, API and scheduler) must fail such a request in
 * bounded time — it used to wait forever, so a trainer would have held its GPU until its max runtime.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
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
  putObject,
  S3_TIMEOUTS,
  startEmbeddedS3,
} from '@gpulab/storage';
import { uploadTinyDataset } from '../../apps/trainer/test/helpers/tiny-dataset';
import { type Finished, startTrainer } from '../../apps/trainer/test/helpers/trainer-process';
import { startTcpProxy, type TcpProxy } from './fixtures/tcp-proxy';

const BUCKET = 'gpulab';
const EPOCHS = 2;
/** S3 stays down at least this long, and in any case until the attempt has given up. */
const MIN_DOWN_MS = 3000;

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
}

let dir: string;
let s3dir: string;
let s3port: number;
let s3server: EmbeddedS3 | null = null;
let proxy: TcpProxy;
let s3: ReturnType<typeof createS3Client>;
let api: Server;
let apiUrl: string;
const events = new Map<string, Record<string, unknown>[]>();
/** When set, the next client chunk that contains it triggers the outage. */
let trigger: string | null = null;
let onTrigger: (() => void) | null = null;

const spec = {
  dataset: { uri: `s3://${BUCKET}/datasets/tiny` },
  imageSize: 32,
  epochs: EPOCHS,
  batchSize: 8,
  freeze: { mode: 'full' },
  optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 },
  seed: 3,
  backend: 'wasm',
};

const env = (jobId: string, attempt: number) => ({
  GPULAB_JOB_ID: jobId,
  GPULAB_ATTEMPT: String(attempt),
  GPULAB_JOB_SPEC: JSON.stringify(spec),
  GPULAB_API_URL: apiUrl,
  GPULAB_JOB_TOKEN: `token-${jobId}`,
  GPULAB_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
  GPULAB_S3_REGION: 'us-east-1',
  GPULAB_S3_BUCKET: BUCKET,
  GPULAB_S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
  GPULAB_S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
  GPULAB_S3_FORCE_PATH_STYLE: 'true',
  GPULAB_LOG_LEVEL: 'info',
});

async function startS3(port: number): Promise<void> {
  s3server = await startEmbeddedS3({ directory: s3dir, port });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gpulab-s3-outage-'));
  s3dir = path.join(dir, 's3');
  await startS3(0);
  s3port = Number(new URL(s3server!.endpoint).port);
  proxy = await startTcpProxy(s3port, (chunk) => {
    if (trigger && chunk.includes(trigger)) {
      trigger = null;
      onTrigger?.();
      return 'cut';
    }
    return 'forward';
  });
  s3 = createS3Client({
    endpoint: s3server!.endpoint,
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
      if (m) events.set(m[1]!, [...(events.get(m[1]!) ?? []), JSON.parse(body) as Record<string, unknown>]);
      res.statusCode = m ? 204 : 404;
      res.end();
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await new Promise((r) => api?.close(r));
  await proxy?.close();
  s3?.destroy();
  await s3server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const explain = (f: Finished) =>
  `exit ${f.code} / ${f.signal}\nstdout:\n${f.stdout}\nstderr:\n${f.stderr.slice(-4000)}`;
const keys = async (prefix: string) => (await listObjects(s3, BUCKET, prefix)).map((o) => o.key.slice(prefix.length));

it('S3 dropped while a checkpoint is written: the retry resumes from the last complete one, same metrics', async () => {
  // the uninterrupted run, through the same proxy
  const base = await startTrainer(env('baseline', 1)).done;
  expect({ code: base.code, log: base.code === 0 ? '' : explain(base) }).toEqual({ code: 0, log: '' });
  const baseline = (await getJsonOrNull<MetricsJson>(s3, BUCKET, layout.metrics('baseline')))!;
  expect(baseline.epochs).toHaveLength(EPOCHS);

  // attempt 1: S3 goes down as epoch 2's optimizer state starts to upload
  const torn = layout.checkpointPrefix('torn', 1, 2);
  const triggerLine = `PUT /${BUCKET}/${torn}optimizer.safetensors`;
  trigger = triggerLine;
  let cutAt = 0;
  let stopped: Promise<void> = Promise.resolve();
  onTrigger = () => {
    cutAt = Date.now();
    const server = s3server!;
    s3server = null;
    stopped = server.close();
  };
  const first = startTrainer(env('torn', 1));
  const failed = await first.done;
  await stopped;
  const gaveUpAfter = Date.now() - cutAt;
  expect(cutAt).toBeGreaterThan(0); // the outage happened where intended
  const downFor = Math.max(MIN_DOWN_MS - gaveUpAfter, 0);
  await new Promise((r) => setTimeout(r, downFor));
  await startS3(s3port); // same port, same folder: the objects written before the outage are there
  const downMs = Date.now() - cutAt;
  console.log(
    `s3-outage: reset every connection and stopped s3rver at "${triggerLine}"; ` +
      `attempt 1 gave up after ${gaveUpAfter} ms with exit ${failed.code}; S3 down ${downMs} ms, restarted on ` +
      `port ${s3port} with the same folder`,
  );
  expect({ code: failed.code, log: failed.code === TrainerExit.INFRASTRUCTURE_ERROR ? '' : explain(failed) }).toEqual({
    code: TrainerExit.INFRASTRUCTURE_ERROR,
    log: '',
  });
  expect(events.get('torn')?.at(-1)).toMatchObject({ type: 'failed', kind: 'infrastructure_error' });
  expect(failed.stdout).toContain(`Epoch 2/${EPOCHS}`); // the epoch ran; its checkpoint is what was torn

  // what the outage left: a torn epoch-2 folder (weights only), latest.json still at epoch 1, no metrics
  expect(await keys(torn)).toEqual(['weights.safetensors']);
  expect(await keys(layout.checkpointPrefix('torn', 1, 1))).toEqual([
    'optimizer.safetensors',
    'state.json',
    'weights.safetensors',
  ]);
  expect(await getJsonOrNull(s3, BUCKET, layout.latestCheckpoint('torn'))).toEqual({
    attempt: 1,
    epoch: 1,
    prefix: layout.checkpointPrefix('torn', 1, 1),
  });
  expect(await getJsonOrNull(s3, BUCKET, layout.metrics('torn'))).toBeNull();

  // attempt 2, as the scheduler retries it: resumes from epoch 1 and ends where the uninterrupted run ended
  const second = await startTrainer(env('torn', 2)).done;
  expect({ code: second.code, log: second.code === 0 ? '' : explain(second) }).toEqual({ code: 0, log: '' });
  const resuming = second.stderr.split('\n').find((l) => l.includes('"msg":"resuming"'));
  expect(resuming).toBeDefined();
  expect(JSON.parse(resuming!)).toMatchObject({ from: layout.checkpointPrefix('torn', 1, 1), epochsDone: 1 });
  const resumed = (await getJsonOrNull<MetricsJson>(s3, BUCKET, layout.metrics('torn')))!;
  expect(resumed.epochs.map((e) => [e.epoch, e.attempt])).toEqual([
    [1, 1],
    [2, 2],
  ]);
  resumed.epochs.forEach((e, i) => {
    const o = baseline.epochs[i]!;
    expect(Math.abs(e.trainLoss - o.trainLoss)).toBeLessThan(1e-4);
    expect(Math.abs(e.valLoss - o.valLoss)).toBeLessThan(1e-4);
    expect(Math.abs(e.valAcc - o.valAcc)).toBeLessThan(1e-4);
    expect(e.confusion).toEqual(o.confusion);
  });
  expect(resumed.bestEpoch).toBe(baseline.bestEpoch);
  expect(await getJsonOrNull(s3, BUCKET, layout.latestCheckpoint('torn'))).toMatchObject({ attempt: 2, epoch: 2 });
  console.log(
    `s3-outage: attempt 2 resumed from ${layout.checkpointPrefix('torn', 1, 1)}; final train loss ` +
      `${resumed.epochs[1]!.trainLoss} vs ${baseline.epochs[1]!.trainLoss} uninterrupted`,
  );
}, 110_000);

it('a blackholed S3 (connections accepted, never answered) fails requests in bounded time instead of hanging', async () => {
  expect(S3_TIMEOUTS.idleMs).toBeGreaterThan(0);
  expect(S3_TIMEOUTS.connectMs).toBeGreaterThan(0);
  const held = new Set<net.Socket>();
  const hole = net.createServer((sock) => {
    held.add(sock); // read nothing, answer nothing
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
  const client = createS3Client({
    endpoint: `http://127.0.0.1:${(hole.address() as AddressInfo).port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    ...EMBEDDED_S3_CREDENTIALS,
    idleTimeoutMs: 500,
  });
  try {
    for (const [what, op] of [
      ['GET', () => getObjectBytes(client, BUCKET, 'jobs/x/checkpoints/latest.json')],
      ['PUT 8 MB', () => putObject(client, BUCKET, 'jobs/x/attempt-1/weights.safetensors', new Uint8Array(8 << 20))],
    ] as const) {
      const t = Date.now();
      const err = (await op().then(
        () => null,
        (e: unknown) => e,
      )) as Error | null;
      const ms = Date.now() - t;
      console.log(
        `s3-outage: blackholed ${what} failed after ${ms} ms (4 attempts, 500 ms idle timeout): ${err?.name}`,
      );
      expect(err?.name).toBe('TimeoutError');
      expect(ms).toBeLessThan(15_000);
    }
  } finally {
    client.destroy();
    for (const s of held) s.destroy();
    await new Promise((r) => hole.close(r));
  }
}, 60_000);
