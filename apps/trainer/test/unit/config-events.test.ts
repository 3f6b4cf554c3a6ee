import { TrainerExit } from '@gpulab/core';
import { BackendUnavailableError } from '../../src/backends';
import { ConfigError, parseConfig, parseS3Env, parseSpec, SpecError } from '../../src/config';
import { DatasetError } from '../../src/data';
import { httpEventSink } from '../../src/events';
import { exitCodeFor } from '../../src/exit';
import { createLogger } from '../../src/log';
import { WeightsError } from '../../src/model/weights';
import { CheckpointError } from '../../src/train/checkpoint';
import { DivergedError } from '../../src/train/loop';

const ENV = {
  GPULAB_JOB_ID: 'job-1',
  GPULAB_ATTEMPT: '2',
  GPULAB_JOB_SPEC: JSON.stringify({ dataset: { uri: 's3://bucket/ds' } }),
  GPULAB_S3_BUCKET: 'gpulab',
  GPULAB_S3_ACCESS_KEY_ID: 'k',
  GPULAB_S3_SECRET_ACCESS_KEY: 's',
};

describe('config', () => {
  it('parses the environment with defaults', () => {
    const { config, specJson } = parseConfig(ENV);
    expect(config).toEqual({
      jobId: 'job-1',
      attempt: 2,
      api: null,
      nativeKernels: 'auto',
      s3: {
        endpoint: undefined,
        region: 'us-east-1',
        bucket: 'gpulab',
        accessKeyId: 'k',
        secretAccessKey: 's',
        forcePathStyle: false,
      },
    });
    const spec = parseSpec(specJson);
    expect(spec.epochs).toBe(25);
    expect(spec.optimizer).toEqual({ type: 'sgd', lr: 0.001, momentum: 0.9, weightDecay: 0, nesterov: false });
  });

  it('reads GPULAB_NATIVE_KERNELS and names a bad value', () => {
    expect(parseConfig({ ...ENV, GPULAB_NATIVE_KERNELS: 'required' }).config.nativeKernels).toBe('required');
    expect(parseConfig({ ...ENV, GPULAB_NATIVE_KERNELS: '' }).config.nativeKernels).toBe('auto');
    expect(() => parseConfig({ ...ENV, GPULAB_NATIVE_KERNELS: 'fast' })).toThrow(/GPULAB_NATIVE_KERNELS/);
  });

  it('reads API and S3 options; empty strings count as unset', () => {
    const { config } = parseConfig({
      ...ENV,
      GPULAB_API_URL: 'http://api:3000',
      GPULAB_JOB_TOKEN: 't',
      GPULAB_S3_ENDPOINT: 'http://minio:9000',
      GPULAB_S3_REGION: '',
      GPULAB_S3_FORCE_PATH_STYLE: 'true',
    });
    expect(config.api).toEqual({ url: 'http://api:3000', token: 't' });
    expect(config.s3.endpoint).toBe('http://minio:9000');
    expect(config.s3.region).toBe('us-east-1');
    expect(config.s3.forcePathStyle).toBe(true);
    expect(parseConfig({ ...ENV, GPULAB_API_URL: '' }).config.api).toBeNull();
    expect(parseS3Env({ GPULAB_S3_ACCESS_KEY_ID: 'a', GPULAB_S3_SECRET_ACCESS_KEY: 'b' }).region).toBe('us-east-1');
  });

  it('rejects a bad environment (ConfigError) and a bad spec (SpecError, with the zod message)', () => {
    expect(() => parseConfig({ ...ENV, GPULAB_ATTEMPT: 'x' })).toThrow(ConfigError);
    expect(() => parseConfig({ ...ENV, GPULAB_S3_FORCE_PATH_STYLE: 'yes' })).toThrow(/GPULAB_S3_FORCE_PATH_STYLE/);
    expect(() => parseConfig({ ...ENV, GPULAB_JOB_ID: '../x' })).toThrow(ConfigError);
    expect(() => parseSpec('{')).toThrow(SpecError);
    expect(() => parseSpec(JSON.stringify({ dataset: { uri: 'http://x' } }))).toThrow(/dataset.uri: must be an s3/);
    expect(() => parseSpec(JSON.stringify({ dataset: { uri: 's3://b/p' }, epochs: 0 }))).toThrow(/epochs/);
  });

  it('maps failures to exit codes', () => {
    const user = [
      new SpecError('x'),
      new DatasetError('x'),
      new WeightsError('x'),
      new BackendUnavailableError('x'),
      new DivergedError('x'),
    ];
    for (const e of user) expect(exitCodeFor(e)).toBe(TrainerExit.USER_ERROR);
    for (const e of [new ConfigError('x'), new CheckpointError('x'), new Error('ECONNRESET'), 'weird'])
      expect(exitCodeFor(e)).toBe(TrainerExit.INFRASTRUCTURE_ERROR);
  });
});

describe('http event sink', () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l) });

  function fakeFetch(statuses: (number | Error)[]) {
    const calls: { url: string; init: RequestInit }[] = [];
    const impl = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      const s = statuses[Math.min(calls.length - 1, statuses.length - 1)]!;
      if (s instanceof Error) throw s;
      return new Response(null, { status: s });
    }) as unknown as typeof fetch;
    return { impl, calls };
  }

  it('POSTs JSON with the bearer token to the job events URL', async () => {
    const f = fakeFetch([204]);
    const sink = httpEventSink({
      apiUrl: 'http://api/',
      token: 'tok',
      jobId: 'j 1',
      log,
      fetchImpl: f.impl,
      baseDelayMs: 1,
    });
    await sink({ type: 'started', attempt: 1, backend: 'wasm' });
    expect(f.calls).toHaveLength(1);
    expect(f.calls[0]!.url).toBe('http://api/v1/internal/jobs/j%201/events');
    expect(f.calls[0]!.init.method).toBe('POST');
    expect((f.calls[0]!.init.headers as Record<string, string>).authorization).toBe('Bearer tok');
    expect(JSON.parse(f.calls[0]!.init.body as string)).toEqual({ type: 'started', attempt: 1, backend: 'wasm' });
  });

  it('retries transient failures, not client errors, and never throws', async () => {
    const transient = fakeFetch([503, new Error('ECONNRESET'), 200]);
    const sink = httpEventSink({
      apiUrl: 'http://api',
      token: 't',
      jobId: 'j',
      log,
      fetchImpl: transient.impl,
      baseDelayMs: 1,
    });
    await sink({ type: 'finished', bestEpoch: 1, bestValAcc: 0.5 });
    expect(transient.calls).toHaveLength(3);

    const rejected = fakeFetch([401]);
    const sink2 = httpEventSink({
      apiUrl: 'http://api',
      token: 't',
      jobId: 'j',
      log,
      fetchImpl: rejected.impl,
      baseDelayMs: 1,
    });
    await sink2({ type: 'finished', bestEpoch: 1, bestValAcc: 0.5 });
    expect(rejected.calls).toHaveLength(1);

    const down = fakeFetch([500]);
    const sink3 = httpEventSink({
      apiUrl: 'http://api',
      token: 't',
      jobId: 'j',
      log,
      fetchImpl: down.impl,
      baseDelayMs: 1,
      attempts: 3,
    });
    await expect(sink3({ type: 'finished', bestEpoch: 1, bestValAcc: 0.5 })).resolves.toBeUndefined();
    expect(down.calls).toHaveLength(3);
    expect(lines.some((l) => JSON.parse(l).msg === 'event not delivered')).toBe(true);
  });
});
