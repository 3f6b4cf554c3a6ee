/**
 * Bearer tokens are verified against Postgres once and then trusted for a few seconds (plugins/bearer-cache.ts):
 * expiry is still checked on every request, and a revocation or role change made through the API applies at once.
 */
import { createUserToken, type Db, ensureUserWithQuota } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;
let now = new Date('2026-11-28T10:00:00Z');

beforeAll(async () => {
  t = await startTestApi({ name: 'auth-cache', deps: { clock: () => now } });
  ({ db, app } = t);
});
afterAll(() => t.close());

async function mk(email: string, role: 'student' | 'admin', expiresAt: Date | null = null) {
  const { user } = await ensureUserWithQuota(db, {
    email,
    name: email,
    role,
    group: 'g',
    grantSeconds: 60,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-01-01'),
  });
  return { token: (await createUserToken(db, user.id, 't', expiresAt)).secret, userId: user.id };
}

const get = (token: string, url: string) =>
  app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });

it('refuses a token the moment it expires, though it was just verified', async () => {
  const u = await mk('expiring@uni.edu', 'student', new Date(now.getTime() + 3600_000));
  expect((await get(u.token, '/v1/me')).statusCode).toBe(200);
  expect((await get(u.token, '/v1/me')).statusCode).toBe(200);
  now = new Date(now.getTime() + 3600_000);
  const res = await get(u.token, '/v1/me');
  expect(res.statusCode).toBe(401);
  expect(res.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
});

it('applies a role change made through the API at once', async () => {
  const boss = await mk('boss@uni.edu', 'admin');
  const deputy = await mk('deputy@uni.edu', 'admin');
  expect((await get(deputy.token, '/v1/admin/users')).statusCode).toBe(200);
  const demote = await app.inject({
    method: 'PATCH',
    url: `/v1/admin/users/${deputy.userId}`,
    payload: { role: 'student' },
    headers: { authorization: `Bearer ${boss.token}` },
  });
  expect(demote.statusCode).toBe(200);
  expect((await get(deputy.token, '/v1/admin/users')).statusCode).toBe(403);
});

it('never remembers a refused token: a token unknown a moment ago works once it exists', async () => {
  expect((await get('gpl_unknown', '/v1/me')).statusCode).toBe(401);
  expect((await get('gpl_unknown', '/v1/me')).statusCode).toBe(401);
});
