import { isGpulabError, JobSpecSchema } from '@gpulab/core';
import { createTestDatabase, type TestDatabase } from '@gpulab/testing';
import { type CreateJobInput, createDb, createJob, type Db, ensureUserWithQuota, getJobView, sqlPool } from '../src';

let tdb: TestDatabase;
let db: Db;
let base: Omit<CreateJobInput, 'spec'>;

const spec = JobSpecSchema.parse({ dataset: { uri: 's3://bucket1/datasets/x' }, epochs: 2, name: 'first' });
const at = new Date('2026-11-28T10:00:00.123Z');

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  const { user, group, membership } = await ensureUserWithQuota(db, {
    email: 'jobs@uni.edu',
    name: 'Jobs',
    group: 'jobs',
    grantSeconds: 3600,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-01-01'),
  });
  base = {
    userId: user.id,
    membershipId: membership.id,
    groupId: group.id,
    at,
    maxAttempts: 3,
    maxRuntimeSeconds: 1800,
    priority: 2,
  };
});
afterAll(async () => {
  await db.$disconnect();
  await tdb.drop();
});

describe('createJob', () => {
  it('inserts the job with its first transition and returns exactly the view a read gives', async () => {
    const res = await createJob(db, { ...base, spec });
    expect(res.created).toBe(true);
    if (!res.created) return;
    expect(res.view).toEqual(await getJobView(db, res.id));
    expect(res.view).toMatchObject({
      status: 'QUEUED',
      statusReason: 'submitted',
      name: 'first',
      priority: 2,
      maxRuntimeSeconds: 1800,
      createdAt: at.toISOString(),
      transitions: [{ from: null, to: 'QUEUED', reason: 'submitted', message: null, at: at.toISOString() }],
    });
    expect(JSON.stringify(res.view)).toBe(JSON.stringify(await getJobView(db, res.id)));
  });

  it('shares one statement among submissions that arrive together, each durable with its transition', async () => {
    const pool = sqlPool(db);
    const query = jest.spyOn(pool, 'query');
    const results = await Promise.all(Array.from({ length: 40 }, () => createJob(db, { ...base, spec })));
    const statements = query.mock.calls.length;
    query.mockRestore();
    expect(statements).toBeLessThan(40);
    const ids = results.map((r) => r.id);
    expect(new Set(ids).size).toBe(40);
    expect(results.every((r) => r.created)).toBe(true);
    expect(await db.job.count({ where: { id: { in: ids } } })).toBe(40);
    expect(await db.jobTransition.count({ where: { jobId: { in: ids }, from: null, to: 'QUEUED' } })).toBe(40);
  });

  it('with an idempotency key, creates one job however many submit it at once; another body is refused', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => createJob(db, { ...base, spec, idempotencyKey: 'same' })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(await db.job.count({ where: { idempotencyKey: 'same' } })).toBe(1);
    expect(await db.jobTransition.count({ where: { jobId: results[0]!.id } })).toBe(1);

    const other = await createJob(db, { ...base, spec: { ...spec, epochs: 3 }, idempotencyKey: 'same' }).catch(
      (e: unknown) => e,
    );
    expect(isGpulabError(other) && other.code).toBe('IDEMPOTENCY_MISMATCH');
    expect(await db.job.count({ where: { idempotencyKey: 'same' } })).toBe(1);
  });

  it('fails only the submission that cannot be inserted when several share a statement', async () => {
    const bad = { ...base, spec, groupId: '00000000-0000-4000-8000-000000000000' }; // no such group: FK violation
    const settled = await Promise.allSettled([
      createJob(db, { ...base, spec }),
      createJob(db, bad),
      createJob(db, { ...base, spec }),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await db.job.count({ where: { groupId: bad.groupId } })).toBe(0);
  });

  it('keeps keys of different users apart', async () => {
    const { user, membership, group } = await ensureUserWithQuota(db, {
      email: 'other@uni.edu',
      name: 'Other',
      group: 'jobs',
      grantSeconds: 3600,
      periodStart: new Date('2026-01-01'),
      periodEnd: new Date('2027-01-01'),
    });
    const mine = await createJob(db, { ...base, spec, idempotencyKey: 'k' });
    const theirs = await createJob(db, {
      ...base,
      userId: user.id,
      membershipId: membership.id,
      groupId: group.id,
      spec: { ...spec, epochs: 5 },
      idempotencyKey: 'k',
    });
    expect(mine.created && theirs.created).toBe(true);
    expect(theirs.id).not.toBe(mine.id);
  });
});
