import os from 'node:os';
import path from 'node:path';
import { JobSpecSchema } from '@gpulab/core';
import { createDb, createJob, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import {
  createTestDatabase,
  REPO_ROOT,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  testRedisPrefix,
} from '@gpulab/testing';
import type { Redis } from 'ioredis';
import type { SchedulerDeps } from '../../src/deps';
import { LocalLauncher } from '../../src/launchers/local';
import { Scheduler } from '../../src/scheduler';

let tdb: TestDatabase;
let db: Db;
let redis: Redis;
let queue: DispatchQueue;
let membership: { id: string; groupId: string; userId: string };
const log = createLogger({ name: 'test', level: 'silent' });

function makeScheduler(slots = 1) {
  const launcher = new LocalLauncher({
    slots,
    flavor: 'local',
    command: [process.execPath, path.join(__dirname, '..', 'fixtures', 'fake-trainer.mjs')],
    cwd: REPO_ROOT,
    logDir: path.join(os.tmpdir(), `gpulab-sched-${process.pid}`),
    baseEnv: { PATH: process.env.PATH },
    log,
    clock: () => new Date(),
  });
  const deps: SchedulerDeps = {
    db,
    launcher,
    queue,
    clock: () => new Date(),
    log,
    trainerEnv: {},
    stopGraceMs: 5000,
    policy: TEST_POLICY,
    reservationGraceMs: 15 * 60_000,
    intervalMs: 100,
  };
  return { scheduler: new Scheduler(deps), launcher };
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, testRedisPrefix('sched'));
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 3_600_000, capacity: 1 });
  const { user, membership: m } = await ensureUserWithQuota(db, {
    email: 's@uni.edu',
    name: 'S',
    group: 'g',
    grantSeconds: 36_000,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-01-01'),
  });
  membership = { id: m.id, groupId: m.groupId, userId: user.id };
});
afterAll(async () => {
  await queue.queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  redis.disconnect();
  await db.$disconnect();
  await tdb.drop();
});

async function submit(name: string, maxHours = 0.5) {
  const spec = JobSpecSchema.parse({ name, dataset: { uri: 's3://gpulab/datasets/x' }, resources: { maxHours } });
  const { id } = await createJob(db, {
    userId: membership.userId,
    membershipId: membership.id,
    groupId: membership.groupId,
    spec,
    at: new Date(),
    maxAttempts: 2,
    maxRuntimeSeconds: Math.round(maxHours * 3600),
  });
  return id;
}

async function until(jobId: string, statuses: string[], s: Scheduler, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await s.tick();
    const job = await db.job.findUniqueOrThrow({ where: { id: jobId } });
    if (statuses.includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job stuck in ${job.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function path_(jobId: string) {
  return (await db.jobTransition.findMany({ where: { jobId }, orderBy: { id: 'asc' } })).map(
    (t) => `${t.to}:${t.reason}`,
  );
}

describe('scheduler lifecycle with the local launcher', () => {
  it('waits for capacity, then runs the next job; the waiting job says why', async () => {
    const { scheduler } = makeScheduler(1);
    const a = await submit('fake a1=sleep:1500,exit:0');
    const b = await submit('fake a1=exit:0');
    await until(a, ['RUNNING'], scheduler);
    const waiting = await db.job.findUniqueOrThrow({ where: { id: b } });
    expect(waiting.status).toBe('QUEUED');
    expect(waiting.pendingReason).toBe('capacity');
    expect(waiting.pendingMessage).toMatch(/0 of 1 free now; estimated start in about 0.50 h/);
    expect(waiting.queuePosition).toBe(1);
    expect(waiting.estimatedStartAt).not.toBeNull();
    await until(a, ['SUCCEEDED'], scheduler);
    await until(b, ['SUCCEEDED'], scheduler);
    await scheduler.stop();
  });

  it('retries an infrastructure failure without charging it, and succeeds on the next attempt', async () => {
    const { scheduler } = makeScheduler();
    const id = await submit('fake a1=sleep:300,exit:11 a2=exit:0');
    const job = await until(id, ['SUCCEEDED', 'FAILED'], scheduler);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempt).toBe(2);
    expect(await path_(id)).toEqual([
      'QUEUED:submitted',
      'ADMITTED:admitted',
      'LAUNCHING:launched',
      'RUNNING:started',
      'RETRYING:infrastructure_error',
      'LAUNCHING:launched',
      'RUNNING:started',
      'SUCCEEDED:completed',
    ]);
    const attempts = await db.jobAttempt.findMany({ where: { jobId: id }, orderBy: { attempt: 'asc' } });
    expect(attempts.map((x) => [x.attempt, x.exitCode, x.charged])).toEqual([
      [1, 11, false],
      [2, 0, true],
    ]);
    await scheduler.stop();
  });

  it('fails a user error at once, uncharged, with the trainer message', async () => {
    const { scheduler } = makeScheduler();
    const id = await submit('fake a1=error:dataset_has_no_train_folder,exit:10');
    const job = await until(id, ['SUCCEEDED', 'FAILED'], scheduler);
    expect(job.status).toBe('FAILED');
    expect(job.statusMessage).toMatch(/dataset_has_no_train_folder/);
    expect(job.usedSeconds).toBe(0);
    expect(await db.costLedger.count({ where: { jobId: id } })).toBe(0);
    await scheduler.stop();
  });

  it('gives up after maxAttempts infrastructure failures', async () => {
    const { scheduler } = makeScheduler();
    const id = await submit('fake a1=exit:11 a2=exit:11');
    const job = await until(id, ['SUCCEEDED', 'FAILED'], scheduler);
    expect(job.status).toBe('FAILED');
    expect(job.statusReason).toBe('retries_exhausted');
    const m = await db.membership.findUniqueOrThrow({ where: { id: membership.id } });
    expect(m.heldSeconds).toBe(0);
    await scheduler.stop();
  });

  it('cancels a running job through SIGTERM and charges the time it ran', async () => {
    const { scheduler } = makeScheduler();
    const id = await submit('fake a1=sleep:30000,exit:0');
    await until(id, ['RUNNING'], scheduler);
    await new Promise((r) => setTimeout(r, 1200));
    await db.job.update({ where: { id }, data: { stopRequested: 'cancelled' } });
    const job = await until(id, ['CANCELLED', 'FAILED', 'SUCCEEDED'], scheduler);
    expect(job.status).toBe('CANCELLED');
    expect(job.usedSeconds).toBeGreaterThanOrEqual(1);
    const sum = await db.costLedger.aggregate({ where: { jobId: id }, _sum: { gpuSeconds: true } });
    expect(sum._sum.gpuSeconds).toBe(job.usedSeconds);
    await scheduler.stop();
  });

  it('stops a job before its max runtime would pass (TIMED_OUT), charging no more than it ran', async () => {
    const { scheduler } = makeScheduler();
    const id = await submit('fake a1=sleep:30000,exit:0', 7 / 3600); // 7 s; grace 5 s + tick 0.1 s projected
    const job = await until(id, ['TIMED_OUT', 'FAILED', 'SUCCEEDED'], scheduler);
    expect(job.status).toBe('TIMED_OUT');
    expect(job.usedSeconds).toBeLessThanOrEqual(7);
    expect((await db.membership.findUniqueOrThrow({ where: { id: membership.id } })).heldSeconds).toBe(0);
    await scheduler.stop();
  });

  it('asks a running job to checkpoint and stop when its hold would run out (BUDGET_EXHAUSTED), never into debt', async () => {
    const { scheduler } = makeScheduler();
    const id = await submit('fake a1=sleep:30000,exit:0', 0.5);
    await until(id, ['RUNNING'], scheduler);
    // an instructor's forced revoke shrinks the job's hold to 8 s (and the member's balance with it)
    const shrink = 1800 - 8;
    await db.$transaction([
      db.job.update({ where: { id }, data: { heldSeconds: 8 } }),
      db.$executeRaw`UPDATE memberships SET held_seconds = held_seconds - ${shrink}, granted_seconds = granted_seconds - ${shrink} WHERE id = ${membership.id}::uuid`,
    ]);
    const job = await until(id, ['BUDGET_EXHAUSTED', 'TIMED_OUT', 'FAILED', 'SUCCEEDED'], scheduler);
    expect(job.status).toBe('BUDGET_EXHAUSTED');
    expect(job.statusReason).toBe('budget_exhausted');
    expect(job.usedSeconds).toBeLessThanOrEqual(8);
    const m = await db.membership.findUniqueOrThrow({ where: { id: membership.id } });
    expect(m.heldSeconds).toBe(0);
    expect(m.usedSeconds + m.heldSeconds).toBeLessThanOrEqual(m.grantedSeconds);
    await db.$executeRaw`UPDATE memberships SET granted_seconds = granted_seconds + ${shrink} WHERE id = ${membership.id}::uuid`;
    await scheduler.stop();
  });

  it('after a scheduler restart, retries the lost attempt exactly once (no duplicate launch)', async () => {
    const first = makeScheduler();
    const id = await submit('fake a1=sleep:30000,exit:0 a2=exit:0');
    await until(id, ['RUNNING'], first.scheduler);
    await first.scheduler.stop();
    await first.launcher.close(); // the old process goes away with its scheduler
    const second = makeScheduler();
    await second.scheduler.recover();
    const job = await until(id, ['SUCCEEDED', 'FAILED'], second.scheduler);
    expect(job.status).toBe('SUCCEEDED');
    expect(await db.jobAttempt.count({ where: { jobId: id } })).toBe(2);
    expect((await path_(id)).filter((p) => p.startsWith('LAUNCHING')).length).toBe(2);
    await second.scheduler.stop();
  });
});
