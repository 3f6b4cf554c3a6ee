/** Passwords, API tokens, session cookies and CSRF tokens never reach the logs, even at trace level. */
import { Writable } from 'node:stream';
import { type Db, ensureUserWithQuota, setPassword } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;
const lines: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  t = await startTestApi({ name: 'logsec', logger: createLogger({ name: 'api', level: 'trace', destination: sink }) });
  ({ db, app } = t);
});
afterAll(() => t.close());

it('keeps every credential out of the logs', async () => {
  const password = 'hunter2-but-longer';
  const { user } = await ensureUserWithQuota(db, {
    email: 'leaky@uni.edu',
    name: 'Leaky',
    group: 'logs',
    grantSeconds: 3600,
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  await setPassword(db, user.id, password);
  const bad = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email: 'leaky@uni.edu', password: `${password}x` },
  });
  expect(bad.statusCode).toBe(401);
  const login = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { email: 'leaky@uni.edu', password },
  });
  const cookie = login.cookies.find((c) => c.name === 'gpulab_session')!.value;
  const csrf = login.json().csrfToken as string;
  const created = await app.inject({
    method: 'POST',
    url: '/v1/me/tokens',
    headers: { cookie: `gpulab_session=${cookie}`, 'x-csrf-token': csrf },
    payload: { name: 'ci' },
  });
  const token = created.json().token as string;
  await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
  await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}x` } });
  await app.inject({
    method: 'POST',
    url: '/v1/me/password',
    headers: { authorization: `Bearer ${token}` },
    payload: { currentPassword: password, newPassword: 'another-long-secret' },
  });
  const all = lines.join('');
  expect(lines.length).toBeGreaterThan(10);
  for (const secret of [password, 'another-long-secret', cookie, csrf, token, token.slice(4)])
    expect({ secret: secret.slice(0, 6), found: all.includes(secret) }).toEqual({
      secret: secret.slice(0, 6),
      found: false,
    });
});
