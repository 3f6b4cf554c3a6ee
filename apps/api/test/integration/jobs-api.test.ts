import { createUserToken, type Db, ensureUserWithQuota, issueToken } from '@gpulab/db';
import type { DispatchQueue } from '@gpulab/queue';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let queue: DispatchQueue;
let app: FastifyInstance;
let alice: { token: string; userId: string };
let bob: { token: string; userId: string };

beforeAll(async () => {
  t = await startTestApi({ name: 'api', flavors: [{ name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 }] });
  ({ db, queue, app } = t);
  alice = await mk('alice@uni.edu');
  bob = await mk('bob@uni.edu');
});
afterAll(() => t.close());

async function mk(email: string, role: 'student' | 'admin' = 'student') {
  const { user } = await ensureUserWithQuota(db, {
    email,
    name: email,
    role,
    group: role === 'admin' ? 'staff' : 'g1',
    grantSeconds: 7200,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-01-01'),
  });
  return { token: (await createUserToken(db, user.id, 't')).secret, userId: user.id };
}

const body = { dataset: { uri: 's3://gpulab-test/datasets/x' }, epochs: 2, imageSize: 32 };
const post = (token: string | null, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/v1/jobs',
    payload: payload as object,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });

describe('POST /v1/jobs', () => {
  it('needs a token: 401 problem+json', async () => {
    const res = await post(null, body);
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect((await post('gpl_not-a-token', body)).statusCode).toBe(401);
  });

  it.each([
    [{ ...body, epochs: 0 }, 'epochs'],
    [{ ...body, imageSize: 'big' }, 'imageSize'],
    [{ ...body, surprise: 1 }, ''],
    [{ dataset: { uri: 'http://evil/x' } }, 'dataset.uri'],
    [{ ...body, dataset: { uri: 's3://other-bucket/x' } }, 'dataset.uri'],
    [{ ...body, resources: { flavor: 'tpu-v9' } }, 'resources.flavor'],
    [{ ...body, optimizer: { type: 'lion' } }, 'optimizer.type'],
    [{ ...body, name: 'a\u0000b' }, 'name'], // Postgres stores no NUL: a 400, not a 500
    [{ ...body, group: 'g1\u0000' }, 'group'],
  ])('rejects a bad body with a 400 naming the field (%j)', async (payload, field) => {
    const res = await post(alice.token, payload);
    expect(res.statusCode).toBe(400);
    const p = res.json();
    expect(p.code).toBe('VALIDATION');
    if (field) expect(p.field).toBe(field);
    else expect(p.detail).toMatch(/surprise/);
  });

  it('creates a QUEUED job, enqueued under its own id, with its first transition', async () => {
    const res = await post(alice.token, body);
    expect(res.statusCode).toBe(201);
    const job = res.json();
    expect(job).toMatchObject({ status: 'QUEUED', attempt: 0, flavor: 'local', gpus: 1 });
    expect(job.transitions).toEqual([expect.objectContaining({ from: null, to: 'QUEUED', reason: 'submitted' })]);
    expect(await queue.has(job.id)).toBe(true);
    expect(job.spec).toMatchObject({ epochs: 2, batchSize: 32, optimizer: { type: 'sgd', lr: 0.001, momentum: 0.9 } });
  });

  it('is idempotent with an Idempotency-Key; another body with the same key is 422', async () => {
    const a = await post(alice.token, body, { 'idempotency-key': 'k-1' });
    const b = await post(alice.token, body, { 'idempotency-key': 'k-1' });
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(200);
    expect(b.json().id).toBe(a.json().id);
    const c = await post(alice.token, { ...body, epochs: 3 }, { 'idempotency-key': 'k-1' });
    expect(c.statusCode).toBe(422);
    expect(c.json().code).toBe('IDEMPOTENCY_MISMATCH');
    expect(await db.job.count({ where: { idempotencyKey: 'k-1' } })).toBe(1);
  });

  it('answers 201 with exactly what GET /v1/jobs/:id shows, and the job has its one transition', async () => {
    const res = await post(alice.token, { ...body, name: 'same view' });
    expect(res.statusCode).toBe(201);
    const got = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${res.json().id}`,
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(res.body).toBe(got.body);
    expect(await db.jobTransition.count({ where: { jobId: res.json().id } })).toBe(1);
  });

  it('creates one job when many send the same key at once; all get it, the first with 201', async () => {
    const many = await Promise.all(
      Array.from({ length: 12 }, () => post(bob.token, body, { 'idempotency-key': 'burst' })),
    );
    expect(many.map((r) => r.statusCode).sort()).toEqual([...Array(11).fill(200), 201]);
    expect(new Set(many.map((r) => r.json().id)).size).toBe(1);
    expect(await db.job.count({ where: { userId: bob.userId, idempotencyKey: 'burst' } })).toBe(1);
    expect(await queue.has(many[0]!.json().id)).toBe(true);
  });

  it('refuses a priority from a student, and accepts it as soon as an admin makes them instructor', async () => {
    const carol = await mk('carol@uni.edu');
    const res = await post(carol.token, { ...body, priority: 5 });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'FORBIDDEN', field: 'priority' });
    const admin = await mk('admin@uni.edu', 'admin');
    const promote = await app.inject({
      method: 'POST',
      url: '/v1/groups/g1/members',
      payload: { email: 'carol@uni.edu', role: 'instructor' },
      headers: { authorization: `Bearer ${admin.token}` },
    });
    expect(promote.statusCode).toBe(200);
    const again = await post(carol.token, { ...body, priority: 5 });
    expect(again.statusCode).toBe(201);
    expect(again.json().priority).toBe(5);
  });

  it('names the group it was refused in, and an unknown flavor, as problem+json', async () => {
    const notMember = await post(alice.token, { ...body, group: 'nope' });
    expect(notMember.statusCode).toBe(403);
    expect(notMember.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(notMember.json()).toMatchObject({ code: 'FORBIDDEN', field: 'group' });
    const flavor = await post(alice.token, { ...body, group: 'g1', resources: { flavor: 'h200' } });
    expect(flavor.statusCode).toBe(400);
    expect(flavor.json()).toMatchObject({ code: 'VALIDATION', field: 'resources.flavor' });
  });
});

describe('job visibility and trainer events', () => {
  it("hides another user's job (404) and shows your own", async () => {
    const id = (await post(alice.token, body)).json().id;
    const mine = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${id}`,
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(mine.statusCode).toBe(200);
    const theirs = await app.inject({
      method: 'GET',
      url: `/v1/jobs/${id}`,
      headers: { authorization: `Bearer ${bob.token}` },
    });
    expect(theirs.statusCode).toBe(404);
    const bad = await app.inject({
      method: 'GET',
      url: '/v1/jobs/not-a-uuid',
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(bad.statusCode).toBe(400);
  });

  it('accepts events only with the token of that very job, and stores epoch metrics idempotently', async () => {
    const id = (await post(alice.token, body)).json().id;
    const other = (await post(alice.token, body)).json().id;
    const jobToken = (await issueToken(db, { userId: alice.userId, name: 'j', scope: 'job', jobId: id })).secret;
    const ev = { type: 'epoch', attempt: 1, epoch: 1, epochs: 2, trainLoss: 1.2, valLoss: 1.1, valAcc: 0.5 };
    const send = (token: string, jobId: string, payload: unknown) =>
      app.inject({
        method: 'POST',
        url: `/v1/internal/jobs/${jobId}/events`,
        payload: payload as object,
        headers: { authorization: `Bearer ${token}` },
      });
    expect((await send(alice.token, id, ev)).statusCode).toBe(403);
    expect((await send(jobToken, other, ev)).statusCode).toBe(403);
    expect((await send(jobToken, id, ev)).statusCode).toBe(204);
    expect((await send(jobToken, id, { ...ev, valAcc: 0.6 })).statusCode).toBe(204);
    expect((await send(jobToken, id, { ...ev, valAcc: 7 })).statusCode).toBe(400);
    const metrics = await db.jobMetric.findMany({ where: { jobId: id } });
    expect(metrics).toHaveLength(1);
    expect(metrics[0]?.valAcc).toBe(0.6);
    // a job token cannot use user routes
    const asUser = await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${jobToken}` } });
    expect(asUser.statusCode).toBe(403);
  });

  it('cancels a queued job once, releasing nothing it did not hold, and refuses nothing on a second cancel', async () => {
    const id = (await post(alice.token, body)).json().id;
    const c1 = await app.inject({
      method: 'POST',
      url: `/v1/jobs/${id}/cancel`,
      headers: { authorization: `Bearer ${alice.token}` },
    });
    const c2 = await app.inject({
      method: 'POST',
      url: `/v1/jobs/${id}/cancel`,
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(c1.json().status).toBe('CANCELLED');
    expect(c2.statusCode).toBe(200);
    expect(await db.jobTransition.count({ where: { jobId: id, to: 'CANCELLED' } })).toBe(1);
    expect(await queue.has(id)).toBe(false);
  });
});
