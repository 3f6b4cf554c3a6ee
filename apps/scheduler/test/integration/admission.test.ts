/**
 * Admission against real Postgres: fair share by decayed usage, priority, bookings (their GPUs serve only their
 * owner; unused ones are released after the grace period), and the scheduler's guards. The launcher is the real
 * local one (its slots are the flavor's capacity); passes run with an injected clock.
 */
import os from 'node:os';
import path from 'node:path';
import { JobSpecSchema } from '@gpulab/core';
import {
  createDb,
  createJob,
  createReservation,
  type Db,
  ensureFlavor,
  ensureUserWithQuota,
  finishJob,
  sweepReservations,
} from '@gpulab/db';
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
import { admissionPass } from '../../src/admission';
import type { SchedulerDeps } from '../../src/deps';
import { LocalLauncher } from '../../src/launchers/local';

let tdb: TestDatabase;
let db: Db;
let redis: Redis;
let queue: DispatchQueue;
const log = createLogger({ name: 'test', level: 'silent' });
const T0 = new Date('2026-11-28T12:00:00Z');
const HOUR = 3600_000;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, testRedisPrefix('adm'));
});
afterAll(async () => {
  await queue.close();
  redis.disconnect();
  await db.$disconnect();
  await tdb.drop();
});

function deps(flavor: string, slots: number, now: Date): SchedulerDeps {
  const clock = () => now;
  const launcher = new LocalLauncher({
    slots,
    flavor,
    command: [process.execPath, '-e', ''],
    cwd: REPO_ROOT,
    logDir: path.join(os.tmpdir(), `gpulab-adm-${process.pid}`),
    baseEnv: {},
    log,
    clock,
  });
  return {
    db,
    launcher,
    queue,
    clock,
    log,
    trainerEnv: {},
    stopGraceMs: 1000,
    intervalMs: 100,
    policy: TEST_POLICY,
    reservationGraceMs: 15 * 60_000,
  };
}

async function student(email: string, group: string, hours: number) {
  const { user, membership } = await ensureUserWithQuota(db, {
    email,
    name: email,
    group,
    grantSeconds: hours * 3600,
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  return { userId: user.id, membershipId: membership.id, groupId: membership.groupId };
}

type Who = Awaited<ReturnType<typeof student>>;

async function submit(who: Who, flavor: string, at: Date, o: { maxHours?: number; priority?: number } = {}) {
  const spec = JobSpecSchema.parse({ dataset: { uri: 's3://gpulab/datasets/x' }, resources: { flavor } });
  const { id } = await createJob(db, {
    ...who,
    spec,
    at,
    maxAttempts: 3,
    maxRuntimeSeconds: Math.round((o.maxHours ?? 1) * 3600),
    priority: o.priority ?? 0,
  });
  return id;
}

/** Past usage: a finished job of `who` with one ledger row of `gpuHours` in the clock hour starting at `hourStart`. */
async function usage(who: Who, flavor: string, hourStart: Date, gpuHours: number) {
  const id = await submit(who, flavor, hourStart);
  await db.job.update({ where: { id }, data: { status: 'SUCCEEDED' } });
  const seconds = Math.round(gpuHours * 3600);
  await db.costLedger.create({
    data: { jobId: id, hourStart, gpuSeconds: seconds, rateMicros: 0n, amountMicros: 0n, closed: true },
  });
}

/** Admits one job at a time on a one-GPU flavor, finishing each before the next pass: the order of admission. */
async function admissionOrder(flavor: string, now: Date, names: Map<string, string>) {
  const order: string[] = [];
  for (let i = 0; i < names.size; i++) {
    const { admitted } = await admissionPass(deps(flavor, 1, now));
    expect(admitted).toHaveLength(1);
    order.push(names.get(admitted[0]!)!);
    await db.job.update({ where: { id: admitted[0]! }, data: { status: 'SUCCEEDED' } });
  }
  return order;
}

describe('admission order', () => {
  it('admits the user with 10x less decayed usage first, then by submit time', async () => {
    await ensureFlavor(db, { name: 'fs1', rateMicrosPerHour: 1_000_000, capacity: 1 });
    const heavy = await student('heavy@uni.edu', 'fs', 100);
    const light = await student('light@uni.edu', 'fs', 100);
    await usage(heavy, 'fs1', new Date(T0.getTime() - 3 * HOUR), 10);
    await usage(light, 'fs1', new Date(T0.getTime() - 3 * HOUR), 1);
    const names = new Map<string, string>();
    // the heavy user submitted first, both jobs
    names.set(await submit(heavy, 'fs1', new Date(T0.getTime() - 50 * 60_000)), 'heavy-1');
    names.set(await submit(heavy, 'fs1', new Date(T0.getTime() - 40 * 60_000)), 'heavy-2');
    names.set(await submit(light, 'fs1', new Date(T0.getTime() - 30 * 60_000)), 'light-1');
    names.set(await submit(light, 'fs1', new Date(T0.getTime() - 20 * 60_000)), 'light-2');

    const first = await admissionPass(deps('fs1', 1, T0));
    expect(names.get(first.admitted[0]!)).toBe('light-1');
    // every waiting job says why, where it is in the queue and when it should start
    const waiting = await db.job.findMany({
      where: { status: 'QUEUED', flavor: 'fs1' },
      orderBy: { queuePosition: 'asc' },
    });
    expect(waiting.map((j) => [names.get(j.id), j.queuePosition, j.pendingReason])).toEqual([
      ['light-2', 1, 'capacity'],
      ['heavy-1', 2, 'fair-share'],
      ['heavy-2', 3, 'fair-share'],
    ]);
    for (const j of waiting) expect(j.estimatedStartAt!.getTime()).toBeGreaterThan(T0.getTime());
    expect(waiting[0]!.pendingMessage).toMatch(/fs1/);
    await db.job.update({ where: { id: first.admitted[0]! }, data: { status: 'SUCCEEDED' } });
    names.delete(first.admitted[0]!);
    expect(await admissionOrder('fs1', T0, names)).toEqual(['light-2', 'heavy-1', 'heavy-2']);
  });

  it('forgets old usage with the half-life: usage 20 weeks old no longer outweighs 10x less recent usage', async () => {
    await ensureFlavor(db, { name: 'fs2', rateMicrosPerHour: 1_000_000, capacity: 1 });
    const old = await student('old@uni.edu', 'fs-decay', 100);
    const recent = await student('recent@uni.edu', 'fs-decay', 100);
    await usage(old, 'fs2', new Date(T0.getTime() - 20 * 7 * 24 * HOUR), 10); // 20 half-lives ago
    await usage(recent, 'fs2', new Date(T0.getTime() - 2 * HOUR), 1);
    const names = new Map<string, string>();
    names.set(await submit(recent, 'fs2', new Date(T0.getTime() - 50 * 60_000)), 'recent');
    names.set(await submit(old, 'fs2', new Date(T0.getTime() - 40 * 60_000)), 'old');
    expect(await admissionOrder('fs2', T0, names)).toEqual(['old', 'recent']);
  });

  it('puts priority before fair share', async () => {
    await ensureFlavor(db, { name: 'pr', rateMicrosPerHour: 1_000_000, capacity: 1 });
    const a = await student('prio-a@uni.edu', 'prio', 100);
    const b = await student('prio-b@uni.edu', 'prio', 100);
    await usage(a, 'pr', new Date(T0.getTime() - 3 * HOUR), 50);
    const names = new Map<string, string>();
    names.set(await submit(b, 'pr', new Date(T0.getTime() - 50 * 60_000)), 'b');
    names.set(await submit(a, 'pr', new Date(T0.getTime() - 40 * 60_000), { priority: 10 }), 'a-urgent');
    expect(await admissionOrder('pr', T0, names)).toEqual(['a-urgent', 'b']);
  });

  it('says "quota" with the numbers when the hold does not fit, and admits nothing over it', async () => {
    await ensureFlavor(db, { name: 'q1', rateMicrosPerHour: 1_000_000, capacity: 4 });
    const poor = await student('poor@uni.edu', 'quota', 1.5);
    const a = await submit(poor, 'q1', T0, { maxHours: 1 });
    const b = await submit(poor, 'q1', new Date(T0.getTime() + 1), { maxHours: 1 });
    const r = await admissionPass(deps('q1', 4, T0));
    expect(r.admitted).toEqual([a]);
    const jb = await db.job.findUniqueOrThrow({ where: { id: b } });
    expect(jb.pendingReason).toBe('quota');
    expect(jb.pendingMessage).toMatch(/1\.00 GPU-h/);
    expect(jb.estimatedStartAt).toBeNull();
    const m = await db.membership.findUniqueOrThrow({ where: { id: poor.membershipId } });
    expect(m.heldSeconds).toBe(3600);
  });
});

describe('reservations', () => {
  it("keeps booked GPUs for their owner: another user's job waits, the owner's runs on them without a new hold", async () => {
    await ensureFlavor(db, { name: 'rv', rateMicrosPerHour: 2_000_000, capacity: 2 });
    const owner = await student('owner@uni.edu', 'resv', 10);
    const other = await student('other@uni.edu', 'resv', 10);
    const booked = await createReservation(db, {
      ...owner,
      flavor: 'rv',
      gpus: 2,
      start: T0,
      end: new Date(T0.getTime() + 2 * HOUR),
      now: T0,
    });
    expect(booked.created).toBe(true);
    const afterBooking = await db.membership.findUniqueOrThrow({ where: { id: owner.membershipId } });
    expect(afterBooking.heldSeconds).toBe(4 * 3600);

    // a second booking over the same window would overbook the flavor: 409
    await expect(
      createReservation(db, {
        ...other,
        flavor: 'rv',
        gpus: 1,
        start: new Date(T0.getTime() + HOUR),
        end: new Date(T0.getTime() + 3 * HOUR),
        now: T0,
      }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });

    const otherJob = await submit(other, 'rv', new Date(T0.getTime() - 60_000), { maxHours: 0.5 });
    const ownerJob = await submit(owner, 'rv', T0, { maxHours: 1 });
    const r = await admissionPass(deps('rv', 2, T0));
    expect(r.admitted).toEqual([ownerJob]);
    const waiting = await db.job.findUniqueOrThrow({ where: { id: otherJob } });
    expect(waiting.pendingReason).toBe('reservation');

    const admitted = await db.job.findUniqueOrThrow({ where: { id: ownerJob } });
    expect(admitted.reservationId).toBe(booked.reservation.id);
    expect(admitted.heldSeconds).toBe(3600);
    const res = await db.reservation.findUniqueOrThrow({ where: { id: booked.reservation.id } });
    expect(res.heldSeconds).toBe(3 * 3600);
    expect(res.firstUsedAt).toEqual(T0);
    // the membership's balance did not change: the job's hold came out of the booking's
    expect((await db.membership.findUniqueOrThrow({ where: { id: owner.membershipId } })).heldSeconds).toBe(4 * 3600);

    // passes during the window never give the idle booked GPU to the other user
    for (const t of [10, 30, 90]) {
      const later = await admissionPass(deps('rv', 2, new Date(T0.getTime() + t * 60_000)));
      expect(later.admitted).toEqual([]);
    }

    // the owner's job ends unused: its hold goes back to the booking, not to the free balance
    expect(
      await finishJob(db, {
        jobId: ownerJob,
        from: 'ADMITTED',
        to: 'CANCELLED',
        reason: 'cancelled',
        at: new Date(T0.getTime() + HOUR),
      }),
    ).toBe(true);
    expect((await db.reservation.findUniqueOrThrow({ where: { id: booked.reservation.id } })).heldSeconds).toBe(
      4 * 3600,
    );
    expect((await db.membership.findUniqueOrThrow({ where: { id: owner.membershipId } })).heldSeconds).toBe(4 * 3600);

    // when the window ends, what the booking still holds is released, and the other job is admitted
    const end = new Date(T0.getTime() + 2 * HOUR);
    expect(await sweepReservations(db, end, 15 * 60_000)).toEqual([{ id: booked.reservation.id, status: 'ended' }]);
    expect(await sweepReservations(db, end, 15 * 60_000)).toEqual([]);
    const m = await db.membership.findUniqueOrThrow({ where: { id: owner.membershipId } });
    expect(m.heldSeconds).toBe(0);
    const entries = await db.quotaEntry.findMany({
      where: { membershipId: owner.membershipId },
      orderBy: { createdAt: 'asc' },
    });
    expect(entries.map((e) => [e.kind, e.seconds, e.jobId === null])).toEqual([
      ['grant', 10 * 3600, true],
      ['hold', 4 * 3600, true],
      ['transfer', 3600, false],
      ['settle', 0, false],
      ['release', 0, false],
      ['release', 4 * 3600, true],
    ]);
    expect((await admissionPass(deps('rv', 2, end))).admitted).toEqual([otherJob]);
  });

  it('releases a booking nobody used within the grace period, and its GPUs go back to the shared pool', async () => {
    await ensureFlavor(db, { name: 'rg', rateMicrosPerHour: 1_000_000, capacity: 1 });
    const owner = await student('forgetful@uni.edu', 'resv-grace', 10);
    const other = await student('waiting@uni.edu', 'resv-grace', 10);
    const { reservation } = await createReservation(db, {
      ...owner,
      flavor: 'rg',
      gpus: 1,
      start: T0,
      end: new Date(T0.getTime() + 3 * HOUR),
      now: T0,
    });
    const job = await submit(other, 'rg', T0, { maxHours: 0.5 });
    expect((await admissionPass(deps('rg', 1, T0))).admitted).toEqual([]);
    expect(await sweepReservations(db, new Date(T0.getTime() + 14 * 60_000), 15 * 60_000)).toEqual([]);
    const afterGrace = new Date(T0.getTime() + 16 * 60_000);
    expect(await sweepReservations(db, afterGrace, 15 * 60_000)).toEqual([{ id: reservation.id, status: 'released' }]);
    expect((await db.membership.findUniqueOrThrow({ where: { id: owner.membershipId } })).heldSeconds).toBe(0);
    expect((await admissionPass(deps('rg', 1, afterGrace))).admitted).toEqual([job]);
  });

  it('refuses a booking beyond the quota (402) and is idempotent by key', async () => {
    await ensureFlavor(db, { name: 'rq', rateMicrosPerHour: 1_000_000, capacity: 8 });
    const owner = await student('booker@uni.edu', 'resv-quota', 3);
    const base = { ...owner, flavor: 'rq', start: T0, now: T0 };
    await expect(
      createReservation(db, { ...base, gpus: 2, end: new Date(T0.getTime() + 2 * HOUR) }),
    ).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
    const once = await createReservation(db, {
      ...base,
      gpus: 1,
      end: new Date(T0.getTime() + HOUR),
      idempotencyKey: 'k',
    });
    const twice = await createReservation(db, {
      ...base,
      gpus: 1,
      end: new Date(T0.getTime() + HOUR),
      idempotencyKey: 'k',
    });
    expect(twice).toEqual({ reservation: once.reservation, created: false });
    expect((await db.membership.findUniqueOrThrow({ where: { id: owner.membershipId } })).heldSeconds).toBe(3600);
    await expect(
      createReservation(db, { ...base, gpus: 2, end: new Date(T0.getTime() + HOUR), idempotencyKey: 'k' }),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_MISMATCH' });
  });
});
