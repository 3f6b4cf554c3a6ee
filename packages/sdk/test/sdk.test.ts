/** The SDK against a real API server (Postgres, Redis, s3rver): typed calls, errors with code and field, retries. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp } from '@gpulab/api/src/app';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota, setPassword } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
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
import { GpulabApiError, GpulabClient } from '../src';

let tdb: TestDatabase;
let db: Db;
let s3: TestS3;
let redis: Redis;
let queue: DispatchQueue;
let logs: LogBus;
let app: FastifyInstance;
let baseUrl: string;
let token: string;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  const prefix = testRedisPrefix('sdk');
  queue = new DispatchQueue(redis, prefix);
  logs = new LogBus(redis, prefix);
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 2_000_000, capacity: 1 });
  app = buildApp(
    {
      db,
      redis,
      queue,
      s3: s3.client,
      bucket: s3.bucket,
      clock: () => new Date(),
      maxAttempts: 3,
      policy: TEST_POLICY,
      logs,
      rateLimit: { perMinute: 30, prefix },
    },
    createLogger({ name: 'test', level: 'silent' }),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const { user } = await ensureUserWithQuota(db, {
    email: 'sdk@uni.edu',
    name: 'SDK',
    group: 'sdk',
    grantSeconds: 2 * 3600,
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  await setPassword(db, user.id, 'a long enough password');
  token = (await createUserToken(db, user.id, 'sdk')).secret;
});
afterAll(async () => {
  await app.close();
  await queue.close();
  redis.disconnect();
  await s3.close();
  await db.$disconnect();
  await tdb.drop();
});

const spec = { dataset: { uri: 's3://gpulab-test/datasets/flowers' }, epochs: 3, resources: { maxHours: 0.5 } };

it('quotes, submits idempotently, lists, reads, follows logs and cancels a job', async () => {
  const api = new GpulabClient({ baseUrl, token });
  expect((await api.me()).quotas[0]).toMatchObject({ grantedHours: 2, freeHours: 2 });
  const q = await api.quote(spec);
  expect(q).toMatchObject({ gpuHours: 0.5, cost: 1, admitNow: true });

  const job = await api.jobs.submit(spec, { idempotencyKey: 'sdk-1' });
  expect(job).toMatchObject({ status: 'QUEUED', flavor: 'local', maxRuntimeSeconds: 1800 });
  expect((await api.jobs.submit(spec, { idempotencyKey: 'sdk-1' })).id).toBe(job.id);
  expect((await api.jobs.list({ status: ['QUEUED'] })).items.map((j) => j.id)).toEqual([job.id]);

  await logs.append(job.id, 1, 'hello from the trainer\n');
  expect(await api.jobs.logs(job.id)).toBe('hello from the trainer\n');
  const seen: string[] = [];
  const following = api.jobs.followLogs(job.id, (t) => seen.push(t));
  await new Promise((r) => setTimeout(r, 300));
  const cancelled = await api.jobs.cancel(job.id);
  expect(cancelled.status).toBe('CANCELLED');
  expect(await following).toBe('CANCELLED');
  expect(seen).toEqual(['hello from the trainer\n']);
  expect((await api.jobs.wait(job.id)).status).toBe('CANCELLED');
});

it('raises GpulabApiError with the code, status and offending field', async () => {
  const api = new GpulabClient({ baseUrl, token });
  const err = await api.jobs.submit({ ...spec, epochs: 0 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GpulabApiError);
  expect(err).toMatchObject({ status: 400, code: 'VALIDATION', field: 'epochs' });
  await expect(api.jobs.get('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({
    status: 404,
    code: 'NOT_FOUND',
  });
  await expect(new GpulabClient({ baseUrl, token: 'gpl_nope' }).me()).rejects.toMatchObject({
    code: 'UNAUTHENTICATED',
  });
});

it('signs in with a password and acts with the session cookie and CSRF token', async () => {
  let cookie = '';
  const cookieFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, {
      ...init,
      headers: { ...(init?.headers as object), ...(cookie ? { cookie } : {}) },
    });
    const set = res.headers.get('set-cookie');
    if (set) cookie = set.split(';')[0]!;
    return res;
  };
  const api = new GpulabClient({ baseUrl, fetch: cookieFetch });
  const { user } = await api.auth.login('sdk@uni.edu', 'a long enough password');
  expect(user.email).toBe('sdk@uni.edu');
  const created = await api.auth.createToken('from the sdk', 7);
  expect(created.token).toMatch(/^gpl_/);
  expect((await new GpulabClient({ baseUrl, token: created.token }).me()).email).toBe('sdk@uni.edu');
});

it('waits out a 429 with Retry-After on idempotent requests, and never retries a plain POST', async () => {
  // a server that is busy once: 429 with Retry-After: 1, then answers
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    if (hits === 1 || req.method === 'POST') {
      res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '1' });
      res.end(JSON.stringify({ code: 'RATE_LIMITED', detail: 'slow down', status: 429 }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'u', email: 'x@y', name: 'x', role: 'student', quotas: [] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const api = new GpulabClient({ baseUrl: url, token: 'gpl_x', retries: 2 });
    const started = Date.now();
    expect((await api.me()).email).toBe('x@y');
    expect(hits).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    hits = 10;
    await expect(api.jobs.cancel('j')).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 1 });
    expect(hits).toBe(11);
  } finally {
    server.close();
  }
});
