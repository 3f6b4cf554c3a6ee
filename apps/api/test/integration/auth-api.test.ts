/** Passwords, dashboard sessions with CSRF protection, and personal API tokens, against real Postgres. */
import { type Db, ensureUserWithQuota, setPassword } from '@gpulab/db';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;
let userId: string;
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  t = await startTestApi({ name: 'auth' });
  ({ db, app } = t);
  const { user } = await ensureUserWithQuota(db, {
    email: 'carol@uni.edu',
    name: 'Carol',
    group: 'ml-101',
    grantSeconds: 3600,
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  userId = user.id;
  await setPassword(db, user.id, PASSWORD);
});
afterAll(() => t.close());

function sessionCookie(res: LightMyRequestResponse): string {
  const c = res.cookies.find((x) => x.name === 'gpulab_session');
  if (!c) throw new Error('no session cookie');
  return `gpulab_session=${c.value}`;
}

describe('sessions', () => {
  it('refuses a wrong password or unknown email with the same 401', async () => {
    for (const payload of [
      { email: 'carol@uni.edu', password: 'wrong password!' },
      { email: 'nobody@uni.edu', password: PASSWORD },
    ]) {
      const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ code: 'UNAUTHENTICATED', detail: 'email or password is wrong' });
      expect(res.cookies).toEqual([]);
    }
    const bad = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'carol', password: 'x' } });
    expect(bad.json()).toMatchObject({ code: 'VALIDATION', field: 'email' });
  });

  it('signs in with an HttpOnly cookie; changes need the CSRF header; sign-out ends the session', async () => {
    const login = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: 'Carol@uni.edu ', password: PASSWORD },
    });
    expect(login.statusCode).toBe(200);
    const set = login.cookies.find((c) => c.name === 'gpulab_session')!;
    expect(set).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    const { csrfToken, user } = login.json();
    expect(user).toMatchObject({ id: userId, email: 'carol@uni.edu' });
    const cookie = sessionCookie(login);

    const me = await app.inject({ method: 'GET', url: '/v1/me', headers: { cookie } });
    expect(me.statusCode).toBe(200);
    expect(me.json().email).toBe('carol@uni.edu');
    expect((await app.inject({ method: 'GET', url: '/v1/auth/session', headers: { cookie } })).json().csrfToken).toBe(
      csrfToken,
    );

    // a cross-site form post carries the cookie but cannot know the token
    const forged = await app.inject({
      method: 'POST',
      url: '/v1/me/tokens',
      headers: { cookie },
      payload: { name: 'x' },
    });
    expect(forged.statusCode).toBe(403);
    expect(forged.json()).toMatchObject({ code: 'FORBIDDEN', field: 'x-csrf-token' });
    const wrong = await app.inject({
      method: 'POST',
      url: '/v1/me/tokens',
      headers: { cookie, 'x-csrf-token': `${csrfToken}x` },
      payload: { name: 'x' },
    });
    expect(wrong.statusCode).toBe(403);
    const ok = await app.inject({
      method: 'POST',
      url: '/v1/me/tokens',
      headers: { cookie, 'x-csrf-token': csrfToken },
      payload: { name: 'from the dashboard' },
    });
    expect(ok.statusCode).toBe(201);

    const out = await app.inject({
      method: 'POST',
      url: '/v1/auth/logout',
      headers: { cookie, 'x-csrf-token': csrfToken },
    });
    expect(out.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/me', headers: { cookie } })).statusCode).toBe(401);
  });
});

describe('personal API tokens', () => {
  it('shows the secret once, lists only its prefix, and stops working when revoked', async () => {
    const login = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: 'carol@uni.edu', password: PASSWORD },
    });
    const headers = { cookie: sessionCookie(login), 'x-csrf-token': login.json().csrfToken };
    const created = await app.inject({
      method: 'POST',
      url: '/v1/me/tokens',
      headers,
      payload: { name: 'laptop', expiresInDays: 30 },
    });
    const { id, token, expiresAt } = created.json();
    expect(token).toMatch(/^gpl_/);
    expect(new Date(expiresAt).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    const bearer = { authorization: `Bearer ${token}` };
    expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer })).statusCode).toBe(200);

    const list = (await app.inject({ method: 'GET', url: '/v1/me/tokens', headers: bearer })).json().items;
    const row = list.find((t: { id: string }) => t.id === id);
    expect(row).toMatchObject({ name: 'laptop', prefix: token.slice(0, 8), revokedAt: null });
    expect(row.lastUsedAt).not.toBeNull();
    expect(JSON.stringify(list)).not.toContain(token);
    const stored = await db.apiToken.findUniqueOrThrow({ where: { id } });
    expect(stored.tokenHash).not.toContain(token);

    expect((await app.inject({ method: 'DELETE', url: `/v1/me/tokens/${id}`, headers: bearer })).statusCode).toBe(200);
    const after = await app.inject({ method: 'GET', url: '/v1/me', headers: bearer });
    expect(after.statusCode).toBe(401);
    const audit = await db.auditEntry.findMany({ where: { targetId: id }, orderBy: { id: 'asc' } });
    expect(audit.map((a) => a.action)).toEqual(['token.create', 'token.revoke']);
  });

  it('changes a password only with the current one', async () => {
    const login = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: 'carol@uni.edu', password: PASSWORD },
    });
    const headers = { cookie: sessionCookie(login), 'x-csrf-token': login.json().csrfToken };
    const no = await app.inject({
      method: 'POST',
      url: '/v1/me/password',
      headers,
      payload: { currentPassword: 'not it at all', newPassword: 'another long one' },
    });
    expect(no.json()).toMatchObject({ code: 'FORBIDDEN', field: 'currentPassword' });
    const short = await app.inject({
      method: 'POST',
      url: '/v1/me/password',
      headers,
      payload: { currentPassword: PASSWORD, newPassword: 'short' },
    });
    expect(short.json()).toMatchObject({ code: 'VALIDATION', field: 'password' });
    const yes = await app.inject({
      method: 'POST',
      url: '/v1/me/password',
      headers,
      payload: { currentPassword: PASSWORD, newPassword: 'another long one' },
    });
    expect(yes.statusCode).toBe(200);
    const again = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { email: 'carol@uni.edu', password: 'another long one' },
    });
    expect(again.statusCode).toBe(200);
  });
});
