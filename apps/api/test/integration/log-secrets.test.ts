/** Passwords, API tokens, session cookies and CSRF tokens never reach the logs, even at trace level. */
import { Writable } from 'node:stream';
import { createDb, type Db, ensureUserWithQuota, setPassword } from '@gpulab/db';
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
const lines: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, testRedisPrefix('logsec'));
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
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
    },
    createLogger({ name: 'api', level: 'trace', destination: sink }),
  );
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await queue.close();
  redis.disconnect();
  await s3.close();
  await db.$disconnect();
  await tdb.drop();
});

it('keeps every credential out of the logs', async () => {
  const password = 'hunter2-but-longer';
  const { user } = await ensureUserWithQuota(db, {
    email: 'leaky@uni.edu',
    name: 'Leaky',
    group: 'logs',
    grantSeconds: 3600,
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  await setPassword(db, user.id, password);
  const bad = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email: 'leaky@uni.edu', password: `${password}x` },
  });
  expect(bad.statusCode).toBe(401);
  const login = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email: 'leaky@uni.edu', password },
  });
  const cookie = login.cookies.find((c) => c.name === 'gpulab_session')!.value;
  const csrf = login.json().csrfToken as string;
  const created = await app.inject({
    method: 'POST',
    url: '/v1/me/tokens',
    headers: { cookie: `gpulab_session=${cookie}`, 'x-csrf-token': csrf },
    payload: { name: 'ci' },
  });
  const token = created.json().token as string;
  await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
  await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}x` } });
  await app.inject({
    method: 'POST',
    url: '/v1/me/password',
    headers: { authorization: `Bearer ${token}` },
    payload: { currentPassword: password, newPassword: 'another-long-secret' },
  });
  const all = lines.join('');
  expect(lines.length).toBeGreaterThan(10);
  for (const secret of [password, 'another-long-secret', cookie, csrf, token, token.slice(4)])
    expect({ secret: secret.slice(0, 6), found: all.includes(secret) }).toEqual({
      secret: secret.slice(0, 6),
      found: false,
    });
});
