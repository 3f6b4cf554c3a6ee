import { GpulabError, JobSpecSchema } from '@gpulab/core';
import { createTestDatabase, type TestDatabase } from '@gpulab/testing';
import {
  addMember,
  admitJob,
  createDb,
  createGroup,
  createJob,
  type Db,
  finishJob,
  getGroupView,
  grantQuota,
  listGroupLedger,
  moveQuota,
  revokeQuota,
  transition,
} from '../src';

let tdb: TestDatabase;
let db: Db;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url, { max: 20 });
});
afterAll(async () => {
  await db.$disconnect();
  await tdb.drop();
});

let n = 0;
const uniq = (p: string) => `${p}-${++n}-${Math.random().toString(36).slice(2, 8)}`;

async function group(budgetSeconds: number) {
  return createGroup(db, {
    name: uniq('course'),
    budgetSeconds,
    periodStart: new Date('2026-09-01T00:00:00Z'),
    periodEnd: new Date('2027-01-31T00:00:00Z'),
  });
}

async function member(groupId: string, role: 'student' | 'instructor' = 'student') {
  const { membership, user } = await addMember(db, { groupId, role, user: { email: `${uniq('u')}@uni.edu` } });
  return { ...membership, email: user.email };
}

const balance = (id: string) =>
  db.membership.findUniqueOrThrow({
    where: { id },
    select: { grantedSeconds: true, heldSeconds: true, usedSeconds: true },
  });

async function rejection(p: Promise<unknown>): Promise<GpulabError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GpulabError) return e;
    throw e;
  }
  throw new Error('expected a GpulabError');
}

describe('groups and members', () => {
  it('creates a group, refusing a taken name and an empty period', async () => {
    const g = await group(3600);
    expect((await rejection(createGroup(db, { ...g, budgetSeconds: 1 }))).code).toBe('CONFLICT');
    const bad = await rejection(
      createGroup(db, { name: uniq('x'), budgetSeconds: 1, periodStart: g.periodEnd, periodEnd: g.periodStart }),
    );
    expect(bad).toMatchObject({ code: 'VALIDATION', details: { field: 'periodEnd' } });
  });

  it('adds members idempotently, creating unknown users once, even concurrently', async () => {
    const g = await group(3600);
    const email = `${uniq('new')}@uni.edu`;
    const results = await Promise.all(
      Array.from({ length: 6 }, () => addMember(db, { groupId: g.id, role: 'student', user: { email } })),
    );
    expect(new Set(results.map((r) => r.membership.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await db.user.count({ where: { email } })).toBe(1);
    // case-insensitive lookup; a second add changes the role only
    const again = await addMember(db, {
      groupId: g.id,
      role: 'instructor',
      user: { email: email.toUpperCase(), name: 'Ignored' },
    });
    expect(again).toMatchObject({ created: false, userCreated: false, membership: { role: 'instructor' } });
    expect(again.user.name).toBe(email.split('@')[0]);
    const byId = await addMember(db, { groupId: g.id, role: 'student', user: { userId: again.user.id } });
    expect(byId.membership.id).toBe(again.membership.id);
    await expect(
      addMember(db, { groupId: g.id, role: 'student', user: { userId: '00000000-0000-4000-8000-000000000000' } }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('grants within the budget', () => {
  it('grants with a ledger row and refuses over budget naming the numbers', async () => {
    const g = await group(7200);
    const a = await member(g.id);
    const actor = await member(g.id, 'instructor');
    await grantQuota(db, { membershipId: a.id, seconds: 5400, actorId: actor.userId, note: 'lab 1' });
    const e = await rejection(grantQuota(db, { membershipId: a.id, seconds: 3600 }));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toMatch(/budget of 2\.00 GPU-h and 1\.50 GPU-h are granted already.*0\.50 GPU-h are left.*1\.00/);
    expect(e.details).toMatchObject({ budgetSeconds: 7200, grantedSeconds: 5400, askedSeconds: 3600 });
    expect(await balance(a.id)).toMatchObject({ grantedSeconds: 5400 });
    const entries = await db.quotaEntry.findMany({ where: { membershipId: a.id } });
    expect(entries).toEqual([
      expect.objectContaining({ kind: 'grant', seconds: 5400, actorId: actor.userId, note: 'lab 1', jobId: null }),
    ]);
    await expect(grantQuota(db, { membershipId: a.id, seconds: 0 })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(grantQuota(db, { membershipId: a.id, seconds: 1.5 })).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('lets exactly the right number of 20 concurrent grants take the last hours', async () => {
    const g = await group(36_000);
    const first = await member(g.id);
    await grantQuota(db, { membershipId: first.id, seconds: 36_000 - 3000 }); // 3000 s left: five grants of 600
    const members = await Promise.all(Array.from({ length: 20 }, () => member(g.id)));
    const results = await Promise.allSettled(
      members.map((m) => grantQuota(db, { membershipId: m.id, seconds: 600, note: 'race' })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(5);
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'CONFLICT', details: { askedSeconds: 600 } });
    const view = (await getGroupView(db, g.id))!;
    expect(view.totals).toMatchObject({ budgetSeconds: 36_000, grantedSeconds: 36_000, unallocatedSeconds: 0 });
    expect(await db.quotaEntry.count({ where: { note: 'race', membership: { groupId: g.id } } })).toBe(5);
  });
});

describe('moves and revokes', () => {
  it('moves free seconds between two members, with notes naming each other', async () => {
    const g = await group(10_000);
    const [a, b] = [await member(g.id), await member(g.id)];
    await grantQuota(db, { membershipId: a.id, seconds: 4000 });
    const r = await moveQuota(db, { fromMembershipId: a.id, toMembershipId: b.id, seconds: 1500, note: 'swap' });
    expect(r.from.grantedSeconds).toBe(2500);
    expect(r.to.grantedSeconds).toBe(1500);
    const [out] = await db.quotaEntry.findMany({ where: { membershipId: a.id, kind: 'revoke' } });
    const [inn] = await db.quotaEntry.findMany({ where: { membershipId: b.id, kind: 'grant' } });
    expect(out?.note).toBe(`swap (moved to ${b.email})`);
    expect(inn?.note).toBe(`swap (moved from ${a.email})`);
    expect((await getGroupView(db, g.id))!.totals.grantedSeconds).toBe(4000);

    const e = await rejection(moveQuota(db, { fromMembershipId: a.id, toMembershipId: b.id, seconds: 2501 }));
    expect(e).toMatchObject({ code: 'CONFLICT', details: { freeSeconds: 2500, askedSeconds: 2501 } });
    const other = await member((await group(10)).id);
    expect(
      (await rejection(moveQuota(db, { fromMembershipId: a.id, toMembershipId: other.id, seconds: 1 }))).code,
    ).toBe('VALIDATION');
    expect(await balance(a.id)).toMatchObject({ grantedSeconds: 2500 });
  });

  it('revokes free seconds only, unless forced', async () => {
    const g = await group(10_000);
    const a = await member(g.id);
    await grantQuota(db, { membershipId: a.id, seconds: 3000 });
    await db.membership.update({ where: { id: a.id }, data: { heldSeconds: 1000, usedSeconds: 500 } });
    await revokeQuota(db, { membershipId: a.id, seconds: 1000, note: 'unused' });
    const e = await rejection(revokeQuota(db, { membershipId: a.id, seconds: 600 }));
    expect(e).toMatchObject({ code: 'CONFLICT', details: { freeSeconds: 500, askedSeconds: 600 } });
    expect(e.message).toMatch(/force/);
    expect(await balance(a.id)).toEqual({ grantedSeconds: 2000, heldSeconds: 1000, usedSeconds: 500 });
  });
});

const spec = JobSpecSchema.parse({ dataset: { uri: 's3://bucket1/datasets/x' }, resources: { maxHours: 1 } });

async function jobIn(
  m: { id: string; userId: string; groupId: string },
  status: 'ADMITTED' | 'RUNNING',
  admittedAt: Date,
) {
  const { id } = await createJob(db, {
    userId: m.userId,
    membershipId: m.id,
    groupId: m.groupId,
    spec,
    at: admittedAt,
    maxAttempts: 3,
    maxRuntimeSeconds: 3600,
  });
  expect((await admitJob(db, { id, membershipId: m.id, holdSeconds: 3600 }, admittedAt)).admitted).toBe(true);
  if (status === 'RUNNING') {
    await transition(db, { jobId: id, from: 'ADMITTED', to: 'LAUNCHING', reason: 'launched', at: admittedAt });
    await transition(db, { jobId: id, from: 'LAUNCHING', to: 'RUNNING', reason: 'started', at: admittedAt });
  }
  return id;
}

async function useSeconds(jobId: string, hourStart: string, gpuSeconds: number) {
  await db.costLedger.create({
    data: {
      jobId,
      hourStart: new Date(hourStart),
      gpuSeconds,
      rateMicros: 2_000_000n,
      amountMicros: BigInt(Math.round((gpuSeconds * 2_000_000) / 3600)),
    },
  });
}

const heldOf = async (jobId: string) => (await db.job.findUniqueOrThrow({ where: { id: jobId } })).heldSeconds;

describe('forced revoke', () => {
  it('shrinks the newest holds first, never below what a job used, and never drives a balance negative', async () => {
    const g = await group(100_000);
    const a = await member(g.id);
    await grantQuota(db, { membershipId: a.id, seconds: 10_000 });
    const older = await jobIn(a, 'RUNNING', new Date('2026-11-28T10:00:00Z'));
    const newer = await jobIn(a, 'ADMITTED', new Date('2026-11-28T10:30:00Z'));
    await useSeconds(older, '2026-11-28T10:00:00Z', 600);
    await useSeconds(older, '2026-11-28T11:00:00Z', 400);
    expect(await balance(a.id)).toEqual({ grantedSeconds: 10_000, heldSeconds: 7200, usedSeconds: 0 });

    // 2800 free: 2200 more come out of the newest hold
    const r1 = await revokeQuota(db, { membershipId: a.id, seconds: 5000, force: true, note: 'end of lab' });
    expect(r1.shrunk).toEqual([{ jobId: newer, fromSeconds: 3600, toSeconds: 1400, usedSeconds: 0 }]);
    expect([await heldOf(older), await heldOf(newer)]).toEqual([3600, 1400]);
    expect(await balance(a.id)).toEqual({ grantedSeconds: 5000, heldSeconds: 5000, usedSeconds: 0 });

    // nothing free: the rest of the newer hold, then the older down to its 1000 used seconds
    const r2 = await revokeQuota(db, { membershipId: a.id, seconds: 4000, force: true });
    expect(r2.shrunk).toEqual([
      { jobId: newer, fromSeconds: 1400, toSeconds: 0, usedSeconds: 0 },
      { jobId: older, fromSeconds: 3600, toSeconds: 1000, usedSeconds: 1000 },
    ]);
    expect(await balance(a.id)).toEqual({ grantedSeconds: 1000, heldSeconds: 1000, usedSeconds: 0 });

    // what is used cannot be revoked: all or nothing, the most revocable named
    const e = await rejection(revokeQuota(db, { membershipId: a.id, seconds: 1, force: true }));
    expect(e).toMatchObject({ code: 'CONFLICT', details: { revocableSeconds: 0 } });
    expect(await balance(a.id)).toEqual({ grantedSeconds: 1000, heldSeconds: 1000, usedSeconds: 0 });

    // the jobs still settle cleanly against their shrunk holds
    const at = new Date('2026-11-28T11:10:00Z');
    expect(
      await finishJob(db, { jobId: older, from: 'RUNNING', to: 'BUDGET_EXHAUSTED', reason: 'budget_exhausted', at }),
    ).toBe(true);
    expect(await finishJob(db, { jobId: newer, from: 'ADMITTED', to: 'CANCELLED', reason: 'cancelled', at })).toBe(
      true,
    );
    expect(await balance(a.id)).toEqual({ grantedSeconds: 1000, heldSeconds: 0, usedSeconds: 1000 });

    // every change has its ledger row: each shrunk hold a jobless release naming the job, each revoke names the jobs
    const entries = await db.quotaEntry.findMany({ where: { membershipId: a.id }, orderBy: { createdAt: 'asc' } });
    const releases = entries.filter((x) => x.kind === 'release' && x.jobId === null);
    expect(releases.map((x) => x.seconds).sort((p, q) => p - q)).toEqual([1400, 2200, 2600]);
    expect(releases.every((x) => /forced revoke: hold of job [0-9a-f-]{36} shrunk/.test(x.note ?? ''))).toBe(true);
    const revokes = entries.filter((x) => x.kind === 'revoke');
    expect(revokes.map((x) => x.seconds)).toEqual([5000, 4000]);
    expect(revokes[0]?.note).toBe(`end of lab (forced: 2800 s free, holds shrunk on job ${newer} (-2200 s))`);
    expect(revokes[1]?.note).toContain(older);
    // the balance is the sum of its entries
    const sum = (kinds: string[]) => entries.filter((x) => kinds.includes(x.kind)).reduce((s, x) => s + x.seconds, 0);
    expect(sum(['grant']) - sum(['revoke'])).toBe(1000);
    expect(sum(['hold']) - sum(['settle', 'release'])).toBe(0);
    expect(sum(['settle'])).toBe(1000);
  });

  it('keeps the budget and every balance consistent under concurrent grants, revokes and moves', async () => {
    const g = await group(20_000);
    const ms = await Promise.all(Array.from({ length: 4 }, () => member(g.id)));
    const ops = Array.from({ length: 40 }, (_, i) => {
      const a = ms[i % 4]!;
      const b = ms[(i + 1) % 4]!;
      const seconds = 500 + ((i * 977) % 2500);
      if (i % 3 === 0) return grantQuota(db, { membershipId: a.id, seconds });
      if (i % 3 === 1) return revokeQuota(db, { membershipId: a.id, seconds: Math.floor(seconds / 2) });
      return moveQuota(db, { fromMembershipId: a.id, toMembershipId: b.id, seconds: Math.floor(seconds / 3) });
    });
    const results = await Promise.allSettled(ops);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'CONFLICT' });
    const view = (await getGroupView(db, g.id))!;
    expect(view.totals.grantedSeconds).toBeLessThanOrEqual(20_000);
    for (const m of ms) {
      const entries = await db.quotaEntry.findMany({ where: { membershipId: m.id } });
      const granted = entries.reduce(
        (s, x) => s + (x.kind === 'grant' ? x.seconds : x.kind === 'revoke' ? -x.seconds : 0),
        0,
      );
      expect((await balance(m.id)).grantedSeconds).toBe(granted);
    }
    // the ledger pages through every entry once, newest first
    const all = await db.quotaEntry.count({ where: { membership: { groupId: g.id } } });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof listGroupLedger>> = await listGroupLedger(db, {
        groupId: g.id,
        limit: 7,
        cursor,
      });
      seen.push(...page.items.map((x) => x.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(all);
    expect(seen).toHaveLength(all);
  });
});
