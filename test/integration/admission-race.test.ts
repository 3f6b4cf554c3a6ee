/**
 * The quota can never be overspent: 200 job submissions race through the real API for a quota that fits exactly
 * K of them, while several admission passes (as if two schedulers had both believed they led) race to admit them.
 * Exactly K are admitted, the membership holds exactly K holds, and the rest wait with reason "quota".
 */
import os from 'node:os';
import path from 'node:path';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { buildApp } from '../../apps/api/src/app';
import { admissionPass } from '../../apps/scheduler/src/admission';
import { LocalLauncher } from '../../apps/scheduler/src/launchers/local';

const SUBMISSIONS = 200;
const K = 7;
const HOLD_HOURS = 0.5;

let tdb: TestDatabase;
let db: Db;
let s3: TestS3;
let redis: Redis;
let queue: DispatchQueue;
let app: FastifyInstance;
const log = createLogger({ name: 'test', level: 'silent' });

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, testRedisPrefix('race'));
  await ensureFlavor(db, { name: 'race', rateMicrosPerHour: 1_000_000, capacity: 1000 });
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
    log,
  );
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await queue.queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  redis.disconnect();
  await s3.close();
  await db.$disconnect();
  await tdb.drop();
});

it(`admits exactly ${K} of ${SUBMISSIONS} racing submissions when the quota fits ${K}`, async () => {
  const { user, membership } = await ensureUserWithQuota(db, {
    email: 'racer@uni.edu',
    name: 'Racer',
    group: 'race',
    grantSeconds: Math.round(K * HOLD_HOURS * 3600) + 1799, // K holds fit, K+1 do not
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  const { secret: token } = await createUserToken(db, user.id, 'race');
  const body = {
    dataset: { uri: `s3://${s3.bucket}/datasets/race` },
    resources: { flavor: 'race', gpus: 1, maxHours: HOLD_HOURS },
  };
  const responses = await Promise.all(
    Array.from({ length: SUBMISSIONS }, () =>
      app.inject({ method: 'POST', url: '/v1/jobs', headers: { authorization: `Bearer ${token}` }, payload: body }),
    ),
  );
  expect(responses.map((r) => r.statusCode)).toEqual(Array(SUBMISSIONS).fill(201));

  const launcher = () =>
    new LocalLauncher({
      slots: 1000,
      flavor: 'race',
      command: [process.execPath, '-e', ''],
      cwd: REPO_ROOT,
      logDir: path.join(os.tmpdir(), `gpulab-race-${process.pid}`),
      baseEnv: {},
      log,
      clock: () => new Date(),
    });
  const pass = () =>
    admissionPass({
      db,
      launcher: launcher(),
      queue,
      clock: () => new Date(),
      log,
      trainerEnv: {},
      stopGraceMs: 1000,
      intervalMs: 100,
      policy: TEST_POLICY,
      reservationGraceMs: 60_000,
    });
  const passes = await Promise.all([pass(), pass(), pass(), pass()]);
  const admitted = passes.flatMap((p) => p.admitted);
  expect(new Set(admitted).size).toBe(admitted.length);
  expect(admitted).toHaveLength(K);
  expect((await pass()).admitted).toEqual([]);

  expect(await db.job.count({ where: { membershipId: membership.id, status: 'ADMITTED' } })).toBe(K);
  expect(await db.job.count({ where: { membershipId: membership.id, status: 'QUEUED', pendingReason: 'quota' } })).toBe(
    SUBMISSIONS - K,
  );
  const m = await db.membership.findUniqueOrThrow({ where: { id: membership.id } });
  expect(m.heldSeconds).toBe(K * HOLD_HOURS * 3600);
  expect(m.grantedSeconds - m.heldSeconds - m.usedSeconds).toBeLessThan(HOLD_HOURS * 3600);
  expect(await db.quotaEntry.count({ where: { membershipId: membership.id, kind: 'hold' } })).toBe(K);
});
