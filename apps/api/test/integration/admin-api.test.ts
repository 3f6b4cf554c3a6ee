/** Administration: accounts, roles, fair-share weights and the audit log; only for admins. */
import { createDb, createUserToken, type Db, ensureUserWithQuota } from '@gpulab/db';
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
let admin: { token: string; userId: string };
let student: { token: string; userId: string };

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, testRedisPrefix('admin'));
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
    createLogger({ name: 'test', level: 'silent' }),
  );
  await app.ready();
  const mk = async (email: string, role: 'student' | 'admin') => {
    const { user } = await ensureUserWithQuota(db, {
      email,
      name: email,
      role,
      group: 'staff',
      grantSeconds: 0,
      periodStart: new Date('2026-09-01'),
      periodEnd: new Date('2027-02-01'),
    });
    return { token: (await createUserToken(db, user.id, 't')).secret, userId: user.id };
  };
  admin = await mk('root@uni.edu', 'admin');
  student = await mk('kim@uni.edu', 'student');
});
afterAll(async () => {
  await app.close();
  await queue.close();
  redis.disconnect();
  await s3.close();
  await db.$disconnect();
  await tdb.drop();
});

const call = (token: string, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

it('creates, finds and changes users; every role change is in the audit log', async () => {
  const created = await call(admin.token, 'POST', '/v1/admin/users', {
    email: 'New.TA@uni.edu',
    name: 'New TA',
    role: 'instructor',
    password: 'a long enough password',
  });
  expect(created.statusCode).toBe(201);
  expect(created.json()).toMatchObject({ email: 'new.ta@uni.edu', role: 'instructor', shareWeight: 1 });
  const dup = await call(admin.token, 'POST', '/v1/admin/users', { email: 'new.ta@uni.edu', name: 'x' });
  expect(dup.json()).toMatchObject({ code: 'CONFLICT', field: 'email' });
  const found = (await call(admin.token, 'GET', '/v1/admin/users?q=TA')).json().items;
  expect(found.map((u: { email: string }) => u.email)).toEqual(['new.ta@uni.edu']);

  const id = created.json().id;
  const changed = await call(admin.token, 'PATCH', `/v1/admin/users/${id}`, { role: 'student', shareWeight: 2 });
  expect(changed.json()).toMatchObject({ role: 'student', shareWeight: 2 });
  expect((await call(admin.token, 'PATCH', `/v1/admin/users/${id}`, {})).json()).toMatchObject({ code: 'VALIDATION' });
  expect(
    (await call(admin.token, 'PATCH', `/v1/admin/users/${admin.userId}`, { role: 'student' })).json(),
  ).toMatchObject({
    code: 'CONFLICT',
    field: 'role',
  });
  const login = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email: 'new.ta@uni.edu', password: 'a long enough password' },
  });
  expect(login.statusCode).toBe(200);

  const audit = (await call(admin.token, 'GET', '/v1/admin/audit')).json().items;
  const roles = audit.filter(
    (a: { action: string; targetId: string }) => a.action === 'user.role' && a.targetId === id,
  );
  expect(roles.map((a: { data: unknown }) => a.data)).toEqual([
    { from: 'instructor', to: 'student' },
    { created: true, role: 'instructor' },
  ]);
});

it('refuses students', async () => {
  for (const [method, url] of [
    ['GET', '/v1/admin/users'],
    ['POST', '/v1/admin/users'],
    ['PATCH', `/v1/admin/users/${student.userId}`],
    ['GET', '/v1/admin/audit'],
  ] as const) {
    const res = await call(
      student.token,
      method,
      url,
      method === 'GET' ? undefined : { role: 'admin', name: 'x', email: 'a@b.c' },
    );
    expect({ url, status: res.statusCode }).toEqual({ url, status: 403 });
  }
  expect((await db.user.findUniqueOrThrow({ where: { id: student.userId } })).role).toBe('student');
});
