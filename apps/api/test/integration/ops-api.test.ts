/** Operations: Prometheus metrics, per-token rate limiting, readiness. */
import { createDb, createUserToken, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { testRedisPrefix } from '@gpulab/testing';
import { buildApp } from '../../src/app';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let a: string;
let b: string;
const NOW = new Date('2026-11-28T12:00:10Z');

beforeAll(async () => {
  t = await startTestApi({
    name: 'ops',
    deps: { clock: () => NOW, rateLimit: { perMinute: 5, prefix: testRedisPrefix('ops-rate') } },
  });
  const mk = async (email: string) => {
    const { user } = await ensureUserWithQuota(t.db, {
      email,
      name: email,
      group: 'ops',
      grantSeconds: 3600,
      periodStart: new Date('2026-09-01'),
      periodEnd: new Date('2027-02-01'),
    });
    return (await createUserToken(t.db, user.id, 't')).secret;
  };
  a = await mk('hal@uni.edu');
  b = await mk('ivy@uni.edu');
});
afterAll(() => t.close());

const get = (token: string | null, url: string) =>
  t.app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

it('limits each token to its requests per minute with 429 and Retry-After, without touching other tokens', async () => {
  for (let i = 0; i < 5; i++) expect((await get(a, '/v1/me')).statusCode).toBe(200);
  const limited = await get(a, '/v1/me');
  expect(limited.statusCode).toBe(429);
  expect(limited.headers['retry-after']).toBe('50');
  expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 50 });
  expect((await get(b, '/v1/me')).statusCode).toBe(200);
  for (let i = 0; i < 8; i++) expect((await get(null, '/healthz')).statusCode).toBe(200);
});

it('exports Prometheus metrics: latency by route, jobs by status, GPUs in use, queue depth, spend this hour', async () => {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { authorization: `Bearer ${b}` },
    payload: { dataset: { uri: 's3://gpulab-test/datasets/x' } },
  });
  expect(res.statusCode).toBe(201);
  const text = (await get(null, '/metrics')).body;
  expect(text).toMatch(
    /gpulab_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/v1\/me",status="200"\}/,
  );
  expect(text).toMatch(/gpulab_http_requests_total\{method="GET",route="\/v1\/me",status="429"\} 1/);
  expect(text).toMatch(/gpulab_jobs\{status="QUEUED"\} 1/);
  expect(text).toMatch(/gpulab_dispatch_queue_depth \d+/);
  expect(text).toMatch(/gpulab_spend_current_hour 0/);
  expect(text).toMatch(/# TYPE gpulab_gpus_in_use gauge/);
});

it('is ready when Postgres, Redis and S3 answer', async () => {
  const res = await get(null, '/readyz');
  expect(res.statusCode).toBe(200);
  expect(res.json().checks.map((c: { name: string; ok: boolean }) => `${c.name}:${c.ok}`)).toEqual([
    'postgres:true',
    'redis:true',
    's3:true',
  ]);
});

describe('when Postgres is unreachable', () => {
  it('answers 503 problem+json with Retry-After instead of a 500, and is not ready', async () => {
    const down = createDb('postgresql://postgres@127.0.0.1:1/unreachable');
    const broken = buildApp(
      { ...t.deps, db: down, rateLimit: undefined },
      createLogger({ name: 'test', level: 'silent' }),
    );
    await broken.ready();
    try {
      for (const [method, url] of [
        ['GET', '/v1/me'],
        ['POST', '/v1/jobs'],
        ['GET', '/v1/flavors'],
      ] as const) {
        const res = await broken.inject({
          method,
          url,
          headers: { authorization: `Bearer ${a}` },
          ...(method === 'POST' ? { payload: { dataset: { uri: 's3://gpulab-test/datasets/x' } } } : {}),
        });
        expect({ url, status: res.statusCode }).toEqual({ url, status: 503 });
        expect(res.headers['retry-after']).toBe('5');
        expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
        expect(res.json()).toMatchObject({ code: 'UNAVAILABLE' });
      }
      const ready = await broken.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.find((c: { name: string }) => c.name === 'postgres').ok).toBe(false);
    } finally {
      await broken.close();
      await down.$disconnect();
    }
  });
});
