import { addMember, createGroup, createUserToken, type Db } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;

interface Who {
  token: string;
  userId: string;
  email: string;
}
let admin: Who;
let teacher: Who; // instructor of g1
let student: Who; // student of g1
let other: Who; // instructor of g2
let g1: { id: string; name: string };
let g2: { id: string; name: string };

async function user(email: string, role: 'student' | 'admin' = 'student'): Promise<Who> {
  const u = await db.user.create({ data: { email, name: email.split('@')[0]!, role } });
  return { token: (await createUserToken(db, u.id, 't')).secret, userId: u.id, email };
}

beforeAll(async () => {
  t = await startTestApi({ name: 'groups-api' });
  ({ db, app } = t);
  admin = await user('root@uni.edu', 'admin');
  teacher = await user('teacher@uni.edu');
  student = await user('student@uni.edu');
  other = await user('other@uni.edu');
  const period = { periodStart: new Date('2026-09-01T00:00:00Z'), periodEnd: new Date('2027-01-31T00:00:00Z') };
  g1 = await createGroup(db, { name: 'cs101', budgetSeconds: 10 * 3600, ...period });
  g2 = await createGroup(db, { name: 'bio202', budgetSeconds: 10 * 3600, ...period });
  await addMember(db, { groupId: g1.id, role: 'instructor', user: { userId: teacher.userId } });
  await addMember(db, { groupId: g1.id, role: 'student', user: { userId: student.userId } });
  await addMember(db, { groupId: g2.id, role: 'instructor', user: { userId: other.userId } });
});
afterAll(() => t.close());

const call = (method: 'GET' | 'POST', url: string, who: Who | null, payload?: unknown) =>
  app.inject({
    method,
    url,
    ...(payload === undefined ? {} : { payload: payload as object }),
    headers: who ? { authorization: `Bearer ${who.token}` } : {},
  });

const newGroup = {
  name: 'ml300',
  budgetHours: 100,
  periodStart: '2026-11-01',
  periodEnd: '2027-03-01T00:00:00Z',
  defaultMaxHours: 2,
};

describe('authorization', () => {
  it('needs a token', async () => {
    expect((await call('GET', '/v1/groups', null)).statusCode).toBe(401);
  });

  it('lets only admins create groups', async () => {
    expect((await call('POST', '/v1/groups', student, newGroup)).statusCode).toBe(403);
    expect((await call('POST', '/v1/groups', teacher, newGroup)).statusCode).toBe(403);
    const res = await call('POST', '/v1/groups', admin, newGroup);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      name: 'ml300',
      budgetHours: 100,
      periodStart: '2026-11-01T00:00:00.000Z',
      defaultMaxHours: 2,
      totals: { budgetSeconds: 360_000, grantedSeconds: 0, unallocatedSeconds: 360_000 },
      members: [],
    });
    expect((await call('POST', '/v1/groups', admin, newGroup)).statusCode).toBe(409);
  });

  it.each([
    ['GET', '/v1/groups/cs101', undefined],
    ['GET', '/v1/groups/cs101/ledger', undefined],
    ['POST', '/v1/groups/cs101/members', { email: 'x@uni.edu' }],
    ['POST', '/v1/groups/cs101/grants', { email: 'student@uni.edu', hours: 1 }],
    ['POST', '/v1/groups/cs101/revokes', { email: 'student@uni.edu', hours: 1 }],
    ['POST', '/v1/groups/cs101/moves', { from: 'student@uni.edu', to: 'teacher@uni.edu', hours: 1 }],
  ] as const)(
    '%s %s: 403 for a student of the group, 404 for an instructor of another, ok for its instructor and admins',
    async (method, url, body) => {
      expect((await call(method, url, student, body)).statusCode).toBe(403);
      expect((await call(method, url, other, body)).statusCode).toBe(404);
      expect((await call(method, url.replace('cs101', g2.id), student, body)).statusCode).toBe(404);
      if (method === 'GET') {
        expect((await call(method, url, teacher)).statusCode).toBe(200);
        expect((await call(method, url.replace('cs101', g1.id), admin)).statusCode).toBe(200);
      }
    },
  );

  it('lists the groups each caller belongs to, with their role and own quota; admins see all', async () => {
    const mine = (await call('GET', '/v1/groups', student)).json().items;
    expect(mine).toEqual([expect.objectContaining({ name: 'cs101', myRole: 'student', quota: expect.any(Object) })]);
    const all = (await call('GET', '/v1/groups', admin)).json().items.map((g: { name: string }) => g.name);
    expect(all).toEqual(expect.arrayContaining(['cs101', 'bio202']));
  });
});

describe('members and quota', () => {
  it('adds a member by email, creating the user once, and changes the role on a second add', async () => {
    const a = await call('POST', '/v1/groups/cs101/members', teacher, { email: 'New.Kid@Uni.edu', name: 'New Kid' });
    expect(a.statusCode).toBe(201);
    expect(a.json()).toMatchObject({ role: 'student', user: { email: 'new.kid@uni.edu', name: 'New Kid' } });
    const b = await call('POST', `/v1/groups/${g1.id}/members`, teacher, {
      email: 'new.kid@uni.edu',
      role: 'instructor',
    });
    expect(b.statusCode).toBe(200);
    expect(b.json()).toMatchObject({ role: 'instructor', membershipId: a.json().membershipId });
    expect(await db.user.count({ where: { email: 'new.kid@uni.edu' } })).toBe(1);
  });

  it('grants, moves and revokes hours inside the budget, each with a ledger entry', async () => {
    const grant = await call('POST', '/v1/groups/cs101/grants', teacher, {
      email: 'student@uni.edu',
      hours: 6,
      note: 'week 1',
    });
    expect(grant.statusCode).toBe(200);
    expect(grant.json()).toMatchObject({
      grantedSeconds: 21_600,
      member: { grantedHours: 6, freeHours: 6 },
      totals: { budgetHours: 10, grantedHours: 6, unallocatedHours: 4 },
    });
    const over = await call('POST', '/v1/groups/cs101/grants', admin, { userId: teacher.userId, hours: 4.5 });
    expect(over.statusCode).toBe(409);
    expect(over.json()).toMatchObject({ code: 'CONFLICT', budgetSeconds: 36_000, grantedSeconds: 21_600 });
    expect(over.json().detail).toMatch(
      /10\.00 GPU-h.*6\.00 GPU-h are granted.*4\.00 GPU-h are left.*4\.50 GPU-h asked/,
    );

    const move = await call('POST', '/v1/groups/cs101/moves', teacher, {
      from: 'student@uni.edu',
      to: teacher.userId,
      hours: 1.5,
    });
    expect(move.statusCode).toBe(200);
    expect(move.json()).toMatchObject({ movedSeconds: 5400, from: { grantedHours: 4.5 }, to: { grantedHours: 1.5 } });

    const revoke = await call('POST', '/v1/groups/cs101/revokes', teacher, { email: 'student@uni.edu', hours: 0.5 });
    expect(revoke.statusCode).toBe(200);
    expect(revoke.json()).toMatchObject({ revokedSeconds: 1800, shrunkHolds: [], member: { grantedHours: 4 } });
    const tooMuch = await call('POST', '/v1/groups/cs101/revokes', teacher, { email: 'student@uni.edu', hours: 5 });
    expect(tooMuch.statusCode).toBe(409);

    const view = (await call('GET', '/v1/groups/cs101', teacher)).json();
    expect(view.totals).toMatchObject({ grantedSeconds: 19_800, unallocatedSeconds: 16_200 });
    const s = view.members.find((m: { user: { email: string } }) => m.user.email === 'student@uni.edu');
    expect(s).toMatchObject({ role: 'student', grantedHours: 4, heldHours: 0, usedHours: 0, freeHours: 4 });

    // the ledger, newest first, in pages
    const p1 = (await call('GET', '/v1/groups/cs101/ledger?limit=2', teacher)).json();
    expect(p1.items.map((e: { kind: string }) => e.kind)).toEqual(['revoke', expect.stringMatching(/grant|revoke/)]);
    expect(p1.items[0]).toMatchObject({ seconds: 1800, actor: { id: teacher.userId, email: 'teacher@uni.edu' } });
    const p2 = (
      await call('GET', `/v1/groups/cs101/ledger?limit=2&cursor=${encodeURIComponent(p1.nextCursor)}`, teacher)
    ).json();
    expect(p2.items).toHaveLength(2);
    expect(p2.nextCursor).toBeNull();
    const notes = [...p1.items, ...p2.items].map((e: { note: string | null }) => e.note);
    expect(notes).toEqual(expect.arrayContaining(['moved to teacher@uni.edu', 'moved from student@uni.edu', 'week 1']));
  });

  it('404s a member who is not in the group, naming the field', async () => {
    const res = await call('POST', '/v1/groups/cs101/grants', teacher, { email: 'other@uni.edu', hours: 1 });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'NOT_FOUND', field: 'email' });
    const mv = await call('POST', '/v1/groups/cs101/moves', teacher, {
      from: 'student@uni.edu',
      to: 'nobody',
      hours: 1,
    });
    expect(mv.json()).toMatchObject({ code: 'NOT_FOUND', field: 'to' });
  });
});

describe('bad input is a 400 naming the field', () => {
  it.each([
    ['/v1/groups/cs101/grants', { email: 'student@uni.edu', hours: -1 }, 'hours'],
    ['/v1/groups/cs101/grants', { email: 'student@uni.edu', hours: 0 }, 'hours'],
    ['/v1/groups/cs101/grants', { email: 'student@uni.edu', hours: 'lots' }, 'hours'],
    ['/v1/groups/cs101/grants', { email: 'student@uni.edu', hours: 0.0001 }, 'hours'],
    ['/v1/groups/cs101/grants', { email: 'student@uni.edu' }, 'hours'],
    ['/v1/groups/cs101/grants', { hours: 1 }, 'email'],
    [
      '/v1/groups/cs101/grants',
      { email: 'student@uni.edu', userId: '00000000-0000-4000-8000-000000000000', hours: 1 },
      'email',
    ],
    ['/v1/groups/cs101/grants', { userId: 'not-a-uuid', hours: 1 }, 'userId'],
    ['/v1/groups/cs101/revokes', { email: 'student@uni.edu', hours: 1, force: 'yes' }, 'force'],
    ['/v1/groups/cs101/moves', { from: 'student@uni.edu', to: 'student@uni.edu', hours: 1 }, 'to'],
    ['/v1/groups/cs101/moves', { from: 'student@uni.edu', hours: 1 }, 'to'],
    ['/v1/groups/cs101/members', { email: 'not-an-email' }, 'email'],
    ['/v1/groups/cs101/members', { email: 'a@uni.edu', role: 'admin' }, 'role'],
    ['/v1/groups', { ...newGroup, name: 'x1', budgetHours: -5 }, 'budgetHours'],
    ['/v1/groups', { ...newGroup, name: 'x2', periodStart: '2026-13-01' }, 'periodStart'],
    ['/v1/groups', { ...newGroup, name: 'x3', periodStart: '2026-02-30' }, 'periodStart'],
    ['/v1/groups', { ...newGroup, name: 'x4', periodStart: '2026-11-01T10:00' }, 'periodStart'],
    ['/v1/groups', { ...newGroup, name: 'x5', periodEnd: '2026-10-01' }, 'periodEnd'],
    ['/v1/groups', { ...newGroup, name: '' }, 'name'],
  ])('POST %s %j -> %s', async (url, body, field) => {
    const res = await call('POST', url, url === '/v1/groups' ? admin : teacher, body);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: 'VALIDATION', field });
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=x', 'limit'],
    ['cursor=bogus', 'cursor'],
  ])('GET ledger?%s -> %s', async (qs, field) => {
    const res = await call('GET', `/v1/groups/cs101/ledger?${qs}`, teacher);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION', field });
  });
});
