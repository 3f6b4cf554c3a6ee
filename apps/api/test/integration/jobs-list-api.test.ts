/** Listing jobs with filters and cursor pagination, instructors' view of their group, cancel by others, retry. */
import { type Db, finishJob } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi, testUser } from '../helpers/app';

let api: TestApi;
let db: Db;
let app: FastifyInstance;
let now = Date.parse('2026-11-28T10:00:00Z');
const users: Record<string, { token: string; userId: string }> = {};

beforeAll(async () => {
  api = await startTestApi({
    name: 'jobs-list',
    deps: {
      clock: () => {
        now += 1000;
        return new Date(now);
      },
    },
    flavors: [
      { name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 },
      { name: 'a100', rateMicrosPerHour: 3_000_000, capacity: 4 },
    ],
  });
  ({ db, app } = api);
  const mk = async (email: string, group: string, role: 'student' | 'instructor' = 'student') => {
    users[email.split('@')[0]!] = await testUser(db, email, { group, role, hours: 100 });
  };
  await mk('dana@uni.edu', 'cv-201');
  await mk('eli@uni.edu', 'cv-201');
  await mk('prof@uni.edu', 'cv-201', 'instructor');
  await mk('zed@uni.edu', 'other-course');
});
afterAll(() => api.close());

const call = (who: string, method: 'GET' | 'POST', url: string, payload?: object) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${users[who]!.token}` },
    ...(payload ? { payload } : {}),
  });
const spec = (flavor = 'local') => ({
  dataset: { uri: 's3://gpulab-test/datasets/x' },
  resources: { flavor, maxHours: 1 },
});

it('pages through my jobs newest first with filters, and names bad filters', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 7; i++)
    ids.push((await call('dana', 'POST', '/v1/jobs', spec(i % 2 ? 'a100' : 'local'))).json().id);
  await call('eli', 'POST', '/v1/jobs', spec());
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const url: string = `/v1/jobs?limit=3${cursor ? `&cursor=${cursor}` : ''}`;
    const page: { items: { id: string }[]; nextCursor: string | null } = (await call('dana', 'GET', url)).json();
    expect(page.items.length).toBeLessThanOrEqual(3);
    seen.push(...page.items.map((j) => j.id));
    cursor = page.nextCursor;
  } while (cursor);
  expect(seen).toEqual([...ids].reverse());

  const a100 = (await call('dana', 'GET', '/v1/jobs?flavor=a100')).json().items;
  expect(a100.map((j: { id: string }) => j.id)).toEqual([ids[5], ids[3], ids[1]]);
  const queued = (await call('dana', 'GET', '/v1/jobs?status=queued,running&limit=200')).json().items;
  expect(queued).toHaveLength(7);
  expect((await call('dana', 'GET', '/v1/jobs?status=DONE')).json()).toMatchObject({
    code: 'VALIDATION',
    field: 'status',
  });
  expect((await call('dana', 'GET', '/v1/jobs?cursor=garbage')).json()).toMatchObject({ field: 'cursor' });
  expect((await call('dana', 'GET', '/v1/jobs?limit=0')).json()).toMatchObject({ field: 'limit' });
});

it("lets an instructor see and cancel their students' jobs (audited), but not other courses' or a student another's", async () => {
  const job = (await call('eli', 'POST', '/v1/jobs', spec())).json();
  expect((await call('dana', 'GET', `/v1/jobs/${job.id}`)).statusCode).toBe(404);
  expect((await call('zed', 'GET', `/v1/jobs/${job.id}`)).statusCode).toBe(404);
  expect((await call('prof', 'GET', `/v1/jobs/${job.id}`)).statusCode).toBe(200);
  const byUser = (await call('prof', 'GET', '/v1/jobs?user=eli@uni.edu')).json().items;
  expect(byUser.map((j: { id: string }) => j.id)).toContain(job.id);
  expect((await call('dana', 'GET', '/v1/jobs?user=eli@uni.edu')).json()).toMatchObject({
    code: 'FORBIDDEN',
    field: 'user',
  });
  expect((await call('zed', 'GET', '/v1/jobs?user=eli@uni.edu')).statusCode).toBe(403);

  const cancelled = await call('prof', 'POST', `/v1/jobs/${job.id}/cancel`);
  expect(cancelled.json().status).toBe('CANCELLED');
  const audit = await db.auditEntry.findMany({ where: { targetId: job.id } });
  expect(audit.map((a) => [a.action, a.actorId])).toEqual([['job.cancel_by_other', users.prof!.userId]]);
});

it('retries a job that did not succeed as a new job with the same spec, once', async () => {
  const job = (await call('dana', 'POST', '/v1/jobs', spec('a100'))).json();
  expect((await call('dana', 'POST', `/v1/jobs/${job.id}/retry`)).json()).toMatchObject({ code: 'CONFLICT' });
  await finishJob(db, { jobId: job.id, from: 'QUEUED', to: 'FAILED', reason: 'user_error', at: new Date() });
  const first = await call('dana', 'POST', `/v1/jobs/${job.id}/retry`);
  expect(first.statusCode).toBe(201);
  expect(first.json()).toMatchObject({ status: 'QUEUED', retryOf: job.id, spec: job.spec, flavor: 'a100' });
  expect(first.json().id).not.toBe(job.id);
  const again = await call('dana', 'POST', `/v1/jobs/${job.id}/retry`);
  expect(again.statusCode).toBe(200);
  expect(again.json().id).toBe(first.json().id);
  expect((await call('prof', 'POST', `/v1/jobs/${job.id}/retry`)).statusCode).toBe(403);
});
