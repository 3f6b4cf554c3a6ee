/** Operations: Prometheus metrics, per-token rate limiting, readiness. */
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import {
  createTestDatabase,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { buildApp } from '../../src/app';

let tdb: TestDatabase;
let db: Db;
let s3: TestS3;
let redis: Redis;
let queue: DispatchQueue;
let app: FastifyInstance;
let a: string;
let b: string;
const NOW = new Date('2026-11-28T12:00:10Z');

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  const prefix = testRedisPrefix('ops');
  queue = new DispatchQueue(redis, prefix);
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 });
  app = buildApp(
    {
      db,
      redis,
      queue,
      s3: s3.client,
      bucket: s3.bucket,
      clock: () => NOW,
      maxAttempts: 3,
      policy: TEST_POLICY,
      rateLimit: { perMinute: 5, prefix },
    },
    createLogger({ name: 'test', level: 'silent' }),
  );
  await app.ready();
  const mk = async (email: string) => {
    const { user } = await ensureUserWithQuota(db, {
      email,
      name: email,
      group: 'ops',
      grantSeconds: 3600,
      periodStart: new Date('2026-09-01'),
      periodEnd: new Date('2027-02-01'),
    });
    return (await createUserToken(db, user.id, 't')).secret;
  };
  a = await mk('hal@uni.edu');
  b = await mk('ivy@uni.edu');
});
afterAll(async () => {
  await app.close();
  await queue.close();
  redis.disconnect();
  await s3.close();
  await db.$disconnect();
  await tdb.drop();
});

const get = (token: string | null, url: string) =>
  app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

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
  const res = await app.inject({
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
      {
        db: down,
        redis,
        queue,
        s3: s3.client,
        bucket: s3.bucket,
        clock: () => NOW,
        maxAttempts: 3,
        policy: TEST_POLICY,
      },
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
