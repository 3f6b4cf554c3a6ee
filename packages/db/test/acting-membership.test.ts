import { createTestDatabase, type TestDatabase } from '@gpulab/testing';
import { createDb, type Db, ensureFlavor, ensureUserWithQuota, findActingMembership } from '../src';

let tdb: TestDatabase;
let db: Db;
let userId: string;
const period = { periodStart: new Date('2026-01-01'), periodEnd: new Date('2027-01-01') };

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  userId = (
    await ensureUserWithQuota(db, {
      email: 'tok@uni.edu',
      name: 'Tok',
      role: 'instructor',
      group: 'a',
      grantSeconds: 1,
      ...period,
    })
  ).user.id;
});
afterAll(async () => {
  await db.$disconnect();
  await tdb.drop();
});

describe('findActingMembership', () => {
  it('finds the named group by name or id, else the oldest membership, and whether the flavor exists', async () => {
    await ensureFlavor(db, { name: 'a10g', rateMicrosPerHour: 1, capacity: 1 });
    const second = await ensureUserWithQuota(db, {
      email: 'tok@uni.edu',
      name: 'Tok',
      group: 'b',
      grantSeconds: 1,
      ...period,
    });
    const first = await findActingMembership(db, userId, undefined, 'a10g');
    expect(first).toMatchObject({ membership: { role: 'instructor', group: { name: 'a', defaultMaxHours: 4 } } });
    expect(first.flavorKnown).toBe(true);
    const byName = await findActingMembership(db, userId, 'b');
    expect(byName).toEqual({
      membership: {
        id: second.membership.id,
        groupId: second.group.id,
        role: 'student',
        group: { name: 'b', defaultMaxHours: 4 },
      },
      flavorKnown: null,
    });
    expect((await findActingMembership(db, userId, second.group.id, 'h100')).membership?.id).toBe(second.membership.id);
    expect((await findActingMembership(db, userId, second.group.id, 'h100')).flavorKnown).toBe(false);
    expect(await findActingMembership(db, userId, 'c', 'a10g')).toEqual({ membership: null, flavorKnown: true });
    expect((await findActingMembership(db, second.group.id, undefined)).membership).toBeNull();
  });
});
