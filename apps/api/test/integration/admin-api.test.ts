/** Administration: accounts, roles, fair-share weights and the audit log; only for admins. */
import { startTestApi, type TestApi, type TestUser } from '../helpers/app';

let t: TestApi;
let admin: TestUser;
let student: TestUser;

beforeAll(async () => {
  t = await startTestApi({ name: 'admin' });
  admin = await t.user('root@uni.edu', { role: 'admin', group: 'staff', hours: 0 });
  student = await t.user('kim@uni.edu', { group: 'staff', hours: 0 });
});
afterAll(() => t.close());

const call = (token: string, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
  t.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

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
  const login = await t.app.inject({
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
  expect((await t.db.user.findUniqueOrThrow({ where: { id: student.userId } })).role).toBe('student');
});
