/** Group settings: instructors set the default max runtime and the per-member GPU cap; admins the budget. Audited. */
import { addMember, createGroup, createUserToken, type Db } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;

beforeAll(async () => {
  t = await startTestApi({ name: 'gset' });
  ({ db, app } = t);
});
afterAll(() => t.close());

it('lets instructors tune runtime and caps, admins the budget (never below what is granted)', async () => {
  const group = await createGroup(db, {
    name: 'dl-301',
    budgetSeconds: 100 * 3600,
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  const prof = await addMember(db, {
    groupId: group.id,
    role: 'instructor',
    user: { email: 'prof@dl.edu', name: 'Prof' },
  });
  const admin = await db.user.create({ data: { email: 'root@dl.edu', name: 'Root', role: 'admin' } });
  const profToken = (await createUserToken(db, prof.user.id, 't')).secret;
  const adminToken = (await createUserToken(db, admin.id, 't')).secret;
  const patch = (token: string, payload: object) =>
    app.inject({
      method: 'PATCH',
      url: `/v1/groups/${group.id}`,
      headers: { authorization: `Bearer ${token}` },
      payload,
    });

  const ok = await patch(profToken, { defaultMaxHours: 2, maxRunningGpusPerUser: 1 });
  expect(ok.statusCode).toBe(200);
  const row = await db.group.findUniqueOrThrow({ where: { id: group.id } });
  expect(row).toMatchObject({ defaultMaxHours: 2, maxRunningGpusPerUser: 1 });
  expect((await patch(profToken, { budgetHours: 500 })).json()).toMatchObject({
    code: 'FORBIDDEN',
    field: 'budgetHours',
  });
  expect((await patch(profToken, {})).json()).toMatchObject({ code: 'VALIDATION' });

  await db.membership.update({ where: { id: prof.membership.id }, data: { grantedSeconds: 40 * 3600 } });
  expect((await patch(adminToken, { budgetHours: 30 })).json()).toMatchObject({
    code: 'CONFLICT',
    field: 'budgetHours',
  });
  expect((await patch(adminToken, { budgetHours: 60 })).statusCode).toBe(200);
  expect((await db.group.findUniqueOrThrow({ where: { id: group.id } })).budgetSeconds).toBe(60 * 3600);
  const audit = await db.auditEntry.findMany({ where: { targetId: group.id, action: 'group.update' } });
  expect(audit).toHaveLength(2);
});
