/**
 * Every route against anonymous callers, job tokens, other users and hostile input. Routes are enumerated from the
 * running app (a new route is covered without editing this file); the property test throws 5,000 random and
 * malformed requests at them and requires that none gets a 5xx and every error is problem+json.
 */
import { createUserToken, type Db, ensureUserWithQuota, issueToken } from '@gpulab/db';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { startTestApi, type TestApi } from '../../apps/api/test/helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;
const routes: { method: string; url: string }[] = [];
let owner: { token: string; userId: string };
let stranger: { token: string; userId: string };
let jobToken: string;
let jobId: string;

/** Routes anyone may call; `/*` is the dashboard's static files (plugins/web.ts: never an API path). */
const PUBLIC = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json', '/v1/auth/login', '/v1/auth/logout', '/*']);

beforeAll(async () => {
  t = await startTestApi({
    name: 'hostile',
    beforeReady: (a) =>
      a.addHook('onRoute', (r) => {
        for (const m of [r.method].flat())
          if (m !== 'HEAD' && !r.url.startsWith('/docs')) routes.push({ method: m, url: r.url });
      }),
  });
  ({ db, app } = t);
  const mk = async (email: string) => {
    const { user } = await ensureUserWithQuota(db, {
      email,
      name: email,
      group: 'hostile',
      grantSeconds: 3600,
      periodStart: new Date('2026-09-01'),
      periodEnd: new Date('2027-02-01'),
    });
    return { token: (await createUserToken(db, user.id, 't')).secret, userId: user.id };
  };
  owner = await mk('owner@uni.edu');
  stranger = await mk('stranger@uni.edu');
  const res = await app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { authorization: `Bearer ${owner.token}` },
    payload: { dataset: { uri: 's3://gpulab-test/datasets/x' } },
  });
  jobId = res.json().id;
  jobToken = (await issueToken(db, { userId: owner.userId, name: 'trainer', scope: 'job', jobId })).secret;
});
afterAll(() => t.close());

const SOME_UUID = '6a1f7c1e-6c1a-4c6b-9d52-2f3c8e1b0a77';
const concrete = (url: string, id = SOME_UUID) => url.replace(/:[a-zA-Z]+/g, id);
const isProblem = (ct: string | undefined) => /application\/problem\+json/.test(ct ?? '');

it('refuses every non-public route to anonymous callers with 401 problem+json', async () => {
  const guarded = routes.filter((r) => !PUBLIC.has(r.url));
  expect(guarded.length).toBeGreaterThan(30);
  for (const r of guarded) {
    const res = await app.inject({ method: r.method as InjectOptions['method'], url: concrete(r.url), payload: {} });
    expect({
      route: `${r.method} ${r.url}`,
      status: res.statusCode,
      problem: isProblem(res.headers['content-type'] as string),
    }).toEqual({
      route: `${r.method} ${r.url}`,
      status: 401,
      problem: true,
    });
  }
});

it("refuses a trainer's job token everywhere but its own job's events", async () => {
  const userRoutes = routes.filter((r) => !PUBLIC.has(r.url) && !r.url.startsWith('/v1/internal/'));
  for (const r of userRoutes) {
    const res = await app.inject({
      method: r.method as InjectOptions['method'],
      url: concrete(r.url, jobId),
      headers: { authorization: `Bearer ${jobToken}` },
      payload: {},
    });
    expect({ route: `${r.method} ${r.url}`, status: res.statusCode }).toEqual({
      route: `${r.method} ${r.url}`,
      status: 403,
    });
  }
  const events = (id: string, token: string) =>
    app.inject({
      method: 'POST',
      url: `/v1/internal/jobs/${id}/events`,
      headers: { authorization: `Bearer ${token}` },
      payload: { type: 'started', backend: 'cpu' },
    });
  expect((await events(SOME_UUID, jobToken)).statusCode).toBe(403);
  expect((await events(jobId, owner.token)).statusCode).toBe(403);
});

it("never shows or changes another user's job", async () => {
  const other = { authorization: `Bearer ${stranger.token}` };
  for (const [method, url] of [
    ['GET', `/v1/jobs/${jobId}`],
    ['GET', `/v1/jobs/${jobId}/logs`],
    ['POST', `/v1/jobs/${jobId}/cancel`],
    ['POST', `/v1/jobs/${jobId}/retry`],
  ] as const) {
    const res = await app.inject({ method, url, headers: other });
    expect({ url, status: res.statusCode }).toEqual({ url, status: 404 });
  }
  const list = await app.inject({ method: 'GET', url: '/v1/jobs', headers: other });
  expect(list.json().items).toEqual([]);
  expect((await db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('QUEUED');
});

it('answers 5,000 random and malformed requests without a 5xx, every error as problem+json', async () => {
  const tokens = [
    owner.token,
    stranger.token,
    jobToken,
    'gpl_forged',
    '',
    'Basic abc',
    'Bearer',
    `Bearer ${'x'.repeat(5000)}`,
  ];
  const ids = [SOME_UUID, jobId, 'not-a-uuid', '..%2F..%2Fetc', '%00', 'ｆｕｌｌ', '1'.repeat(300)];
  const junkText = fc.oneof(
    fc.string(),
    fc.constantFrom('{', '[]', 'null', '{"a":', '\u0000', '{"epochs":1e309}', '{"__proto__":{"x":1}}'),
  );
  const body = fc.oneof(fc.anything(), fc.json(), junkText, fc.object());
  const requestArb = fc.record({
    route: fc.constantFrom(...routes.filter((r) => r.url !== '/v1/auth/login')),
    id: fc.constantFrom(...ids),
    token: fc.constantFrom(...tokens),
    query: fc.dictionary(
      fc.constantFrom('limit', 'cursor', 'status', 'follow', 'format', 'by', 'from', 'to', 'attempt', 'user', 'x'),
      fc.string({ maxLength: 40 }),
    ),
    body,
    contentType: fc.constantFrom(
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      undefined,
    ),
  });
  let count = 0;
  await fc.assert(
    fc.asyncProperty(requestArb, async (r) => {
      count++;
      if (r.query.follow !== undefined) r.query.follow = '0';
      const qs = new URLSearchParams(r.query).toString();
      const payload = typeof r.body === 'string' ? r.body : JSON.stringify(r.body ?? null);
      const headers: Record<string, string> = {};
      if (r.token) headers.authorization = r.token.startsWith('B') ? r.token : `Bearer ${r.token}`;
      if (r.contentType) headers['content-type'] = r.contentType;
      const res = await app.inject({
        method: r.route.method as InjectOptions['method'],
        url: `${concrete(r.route.url, encodeURIComponent(r.id))}${qs ? `?${qs}` : ''}`,
        headers,
        ...(r.route.method === 'GET' || r.route.method === 'DELETE' ? {} : { payload }),
      });
      if (res.statusCode >= 500)
        throw new Error(`${r.route.method} ${r.route.url} → ${res.statusCode}: ${res.body.slice(0, 300)}`);
      if (res.statusCode >= 400 && !isProblem(res.headers['content-type'] as string))
        throw new Error(
          `${r.route.method} ${r.route.url} → ${res.statusCode} not problem+json: ${res.headers['content-type']}`,
        );
    }),
    { numRuns: 5000, seed: 20261128 },
  );
  expect(count).toBe(5000);
}, 240_000);
