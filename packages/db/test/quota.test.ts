import { JobSpecSchema } from '@gpulab/core';
import { createTestDatabase, type TestDatabase } from '@gpulab/testing';
import { admitJob, createDb, createJob, type Db, finishJob, grantSeconds, meterJob, transition } from '../src';

let tdb: TestDatabase;
let db: Db;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
});
afterAll(async () => {
  await db.$disconnect();
  await tdb.drop();
});

async function setup(grantedSeconds: number) {
  const user = await db.user.create({ data: { email: `u${Math.random()}@x.edu`, name: 'U' } });
  const group = await db.group.create({
    data: {
      name: `g${Math.random()}`,
      budgetSeconds: 1_000_000,
      periodStart: new Date('2026-09-01'),
      periodEnd: new Date('2027-01-31'),
    },
  });
  const m = await db.membership.create({ data: { groupId: group.id, userId: user.id } });
  if (grantedSeconds) await grantSeconds(db, { membershipId: m.id, seconds: grantedSeconds });
  return { user, group, m };
}

const spec = JobSpecSchema.parse({ dataset: { uri: 's3://bucket1/datasets/x' }, resources: { maxHours: 0.5 } });
const at = new Date('2026-11-28T10:00:00Z');

describe('quota holds and settlement', () => {
  it('admits concurrently only as many jobs as the quota covers, exactly', async () => {
    const { user, group, m } = await setup(1800 * 3); // three half-hour holds
    const ids: string[] = [];
    for (let i = 0; i < 12; i++)
      ids.push(
        (
          await createJob(db, {
            userId: user.id,
            membershipId: m.id,
            groupId: group.id,
            spec,
            at,
            maxAttempts: 3,
            maxRuntimeSeconds: 1800,
          })
        ).id,
      );
    const results = await Promise.all(ids.map((id) => admitJob(db, { id, membershipId: m.id, holdSeconds: 1800 }, at)));
    expect(results.filter((r) => r.admitted)).toHaveLength(3);
    const after = await db.membership.findUniqueOrThrow({ where: { id: m.id } });
    expect(after.heldSeconds).toBe(5400);
    expect(await db.job.count({ where: { membershipId: m.id, status: 'ADMITTED' } })).toBe(3);
  });

  it('charges the ledger sum and releases the rest of the hold, once', async () => {
    const { user, group, m } = await setup(3600);
    const { id } = await createJob(db, {
      userId: user.id,
      membershipId: m.id,
      groupId: group.id,
      spec,
      at,
      maxAttempts: 3,
      maxRuntimeSeconds: 1800,
    });
    expect((await admitJob(db, { id, membershipId: m.id, holdSeconds: 1800 }, at)).admitted).toBe(true);
    expect(await transition(db, { jobId: id, from: 'ADMITTED', to: 'LAUNCHING', reason: 'launched', at })).toBe(true);
    expect(await transition(db, { jobId: id, from: 'LAUNCHING', to: 'RUNNING', reason: 'started', at })).toBe(true);
    // runs across an hour boundary: 10:50 -> 11:10
    const start = Date.parse('2026-11-28T10:50:00Z');
    const end = Date.parse('2026-11-28T11:10:00.400Z');
    const metered = await meterJob(db, {
      jobId: id,
      gpus: 1,
      rateMicrosPerHour: 2_000_000,
      capSeconds: 1800,
      intervals: [{ startMs: start, endMs: end }],
      now: new Date(end),
    });
    expect(metered.gpuSeconds).toBe(600 + 601);
    const rows = await db.costLedger.findMany({ where: { jobId: id }, orderBy: { hourStart: 'asc' } });
    expect(rows.map((r) => [r.gpuSeconds, r.closed])).toEqual([
      [600, true],
      [601, false],
    ]);
    expect(
      await finishJob(db, { jobId: id, from: 'RUNNING', to: 'SUCCEEDED', reason: 'completed', at: new Date(end) }),
    ).toBe(true);
    // a second finisher loses the CAS and changes nothing
    expect(
      await finishJob(db, { jobId: id, from: 'RUNNING', to: 'FAILED', reason: 'user_error', at: new Date(end) }),
    ).toBe(false);
    const mm = await db.membership.findUniqueOrThrow({ where: { id: m.id } });
    expect(mm).toMatchObject({ grantedSeconds: 3600, heldSeconds: 0, usedSeconds: 1201 });
    const job = await db.job.findUniqueOrThrow({ where: { id } });
    expect(Number(job.costMicros)).toBe(rows.reduce((s, r) => s + Number(r.amountMicros), 0));
    expect(job.status).toBe('SUCCEEDED');
    const transitions = await db.jobTransition.findMany({ where: { jobId: id }, orderBy: { id: 'asc' } });
    expect(transitions.map((t) => t.to)).toEqual(['QUEUED', 'ADMITTED', 'LAUNCHING', 'RUNNING', 'SUCCEEDED']);
  });

  it('never charges beyond the hold', async () => {
    const { user, group, m } = await setup(3600);
    const { id } = await createJob(db, {
      userId: user.id,
      membershipId: m.id,
      groupId: group.id,
      spec,
      at,
      maxAttempts: 3,
      maxRuntimeSeconds: 1800,
    });
    await admitJob(db, { id, membershipId: m.id, holdSeconds: 1800 }, at);
    const metered = await meterJob(db, {
      jobId: id,
      gpus: 1,
      rateMicrosPerHour: 1_000_000,
      capSeconds: 1800,
      intervals: [{ startMs: at.getTime(), endMs: at.getTime() + 3_000_000 }],
      now: new Date(at.getTime() + 3_000_000),
    });
    expect(metered.gpuSeconds).toBe(1800);
  });

  it('keeps the rate an hour was first charged at when the price changes', async () => {
    const { user, group, m } = await setup(4 * 3600);
    const { id } = await createJob(db, {
      userId: user.id,
      membershipId: m.id,
      groupId: group.id,
      spec,
      at,
      maxAttempts: 3,
      maxRuntimeSeconds: 3 * 3600,
    });
    await admitJob(db, { id, membershipId: m.id, holdSeconds: 3 * 3600 }, at);
    const start = at.getTime(); // 10:00 on the hour
    const meterAt = (minutes: number, rate: number) =>
      meterJob(db, {
        jobId: id,
        gpus: 1,
        rateMicrosPerHour: rate,
        capSeconds: 3 * 3600,
        intervals: [{ startMs: start, endMs: start + minutes * 60_000 }],
        now: new Date(start + minutes * 60_000),
      });
    await meterAt(30, 1_000_000);
    await meterAt(90, 4_000_000); // the price went up at 11:00-ish: the 10:00 hour keeps 1.00/h
    const rows = await db.costLedger.findMany({ where: { jobId: id }, orderBy: { hourStart: 'asc' } });
    expect(rows.map((r) => [r.gpuSeconds, Number(r.rateMicros), Number(r.amountMicros), r.closed])).toEqual([
      [3600, 1_000_000, 1_000_000, true],
      [1800, 4_000_000, 2_000_000, false],
    ]);
  });

  it('refuses to revoke more than is free', async () => {
    const { m } = await setup(100);
    await expect(grantSeconds(db, { membershipId: m.id, seconds: -200 })).rejects.toThrow(/free balance/);
    await grantSeconds(db, { membershipId: m.id, seconds: -100 });
    expect((await db.membership.findUniqueOrThrow({ where: { id: m.id } })).grantedSeconds).toBe(0);
  });
});
