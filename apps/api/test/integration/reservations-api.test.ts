/** Reservations and quotes over HTTP, against real Postgres and the embedded S3. */
import { createUserToken, type Db, ensureUserWithQuota } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;
const NOW = new Date('2026-11-28T12:00:00Z');
const H = 3600_000;
let alice: string;
let bob: string;

beforeAll(async () => {
  t = await startTestApi({
    name: 'resv-api',
    deps: { clock: () => NOW },
    flavors: [{ name: 'a100', rateMicrosPerHour: 2_500_000, capacity: 2 }],
  });
  ({ db, app } = t);
  const mk = async (email: string, hours: number) => {
    const { user } = await ensureUserWithQuota(db, {
      email,
      name: email,
      group: 'ml-101',
      grantSeconds: hours * 3600,
      periodStart: new Date('2026-09-01'),
      periodEnd: new Date('2027-02-01'),
    });
    return (await createUserToken(db, user.id, 'test')).secret;
  };
  alice = await mk('alice@uni.edu', 10);
  bob = await mk('bob@uni.edu', 1);
});
afterAll(() => t.close());

const call = (token: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

const iso = (ms: number) => new Date(NOW.getTime() + ms).toISOString();

describe('POST /v1/reservations', () => {
  it('books GPUs, holding GPUs × hours of the quota; an overlapping booking over capacity is 409', async () => {
    const res = await call(alice, 'POST', '/v1/reservations', {
      flavor: 'a100',
      gpus: 2,
      start: iso(H),
      end: iso(3 * H),
      note: 'assignment 3 deadline',
    });
    expect(res.statusCode).toBe(201);
    const booking = res.json();
    expect(booking).toMatchObject({ flavor: 'a100', gpus: 2, status: 'booked', bookedHours: 4, heldHours: 4 });
    const me = (await call(alice, 'GET', '/v1/me')).json();
    expect(me.quotas[0]).toMatchObject({ heldHours: 4, freeHours: 6 });

    const clash = await call(bob, 'POST', '/v1/reservations', {
      flavor: 'a100',
      gpus: 1,
      start: iso(2 * H),
      end: iso(2.5 * H),
    });
    expect(clash.statusCode).toBe(409);
    expect(clash.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(clash.json()).toMatchObject({ code: 'CONFLICT', field: 'gpus', capacity: 2, booked: 2 });
    expect(clash.json().detail).toMatch(/2 of 2 GPU\(s\) are already booked/);

    // right after it ends there is room again
    const after = await call(bob, 'POST', '/v1/reservations', {
      flavor: 'a100',
      gpus: 1,
      start: iso(3 * H),
      end: iso(3.5 * H),
    });
    expect(after.statusCode).toBe(201);

    // cancelling gives the hours back
    const del = await call(alice, 'DELETE', `/v1/reservations/${booking.id}`);
    expect(del.statusCode).toBe(200);
    expect(del.json()).toMatchObject({ status: 'cancelled', heldHours: 0, closeReason: 'cancelled by its owner' });
    expect((await call(alice, 'GET', '/v1/me')).json().quotas[0]).toMatchObject({ heldHours: 0, freeHours: 10 });
    expect((await call(alice, 'DELETE', `/v1/reservations/${booking.id}`)).json().status).toBe('cancelled');
  });

  it('names the field that is wrong, and keeps other users’ bookings private', async () => {
    const bad = await call(alice, 'POST', '/v1/reservations', {
      flavor: 'a100',
      gpus: 1,
      start: iso(2 * H),
      end: iso(H),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'VALIDATION', field: 'end' });
    const zero = await call(alice, 'POST', '/v1/reservations', {
      flavor: 'a100',
      gpus: 0,
      start: iso(H),
      end: iso(2 * H),
    });
    expect(zero.json()).toMatchObject({ code: 'VALIDATION', field: 'gpus' });
    const unknown = await call(alice, 'POST', '/v1/reservations', {
      flavor: 'v100',
      gpus: 1,
      start: iso(H),
      end: iso(2 * H),
    });
    expect(unknown.json()).toMatchObject({ code: 'VALIDATION', field: 'flavor' });
    const poor = await call(bob, 'POST', '/v1/reservations', {
      flavor: 'a100',
      gpus: 2,
      start: iso(5 * H),
      end: iso(6 * H),
    });
    expect(poor.statusCode).toBe(402);
    expect(poor.json().detail).toMatch(/needs 2\.00 GPU-h; 0\.50 GPU-h free/);

    const mine = (await call(bob, 'GET', '/v1/reservations')).json().items;
    expect(mine.length).toBeGreaterThan(0);
    const other = await call(alice, 'GET', `/v1/reservations/${mine[0].id}`);
    expect(other.statusCode).toBe(404);
  });
});

describe('POST /v1/quote', () => {
  const spec = (resources: Record<string, unknown>) => ({
    dataset: { uri: `s3://gpulab-test/datasets/flowers` },
    resources,
  });

  it('quotes hold, cost and start for a job that fits now, without writing anything', async () => {
    const before = await db.job.count();
    const res = await call(alice, 'POST', '/v1/quote', spec({ flavor: 'a100', gpus: 1, maxHours: 2 }));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      group: { name: 'ml-101' },
      gpuHours: 2,
      holdSeconds: 7200,
      costMicros: 5_000_000,
      cost: 5,
      admitNow: true,
      estimatedStart: NOW.toISOString(),
      pending: null,
    });
    expect(await db.job.count()).toBe(before);
  });

  it("says why a job would wait: quota beyond the caller's free hours; the group's default max runtime", async () => {
    const res = await call(bob, 'POST', '/v1/quote', spec({ flavor: 'a100', gpus: 2, maxHours: 1 }));
    expect(res.json()).toMatchObject({ admitNow: false, estimatedStart: null, pending: { reason: 'quota' } });
    const dflt = await call(alice, 'POST', '/v1/quote', spec({ flavor: 'a100', gpus: 1 }));
    expect(dflt.json()).toMatchObject({ gpuHours: 4 }); // groups default to 4 h
    const prio = await call(bob, 'POST', '/v1/quote', { ...spec({ flavor: 'a100' }), priority: 5 });
    expect(prio.statusCode).toBe(403);
    expect(prio.json()).toMatchObject({ code: 'FORBIDDEN', field: 'priority' });
  });
});

describe('flavors', () => {
  it('lists GPU types with price, capacity and GPUs in use; only admins set prices', async () => {
    const list = (await call(alice, 'GET', '/v1/flavors')).json();
    expect(list.items).toEqual([
      { name: 'a100', pricePerGpuHour: 2.5, rateMicrosPerGpuHour: 2_500_000, capacity: 2, inUse: 0 },
    ]);
    const denied = await call(alice, 'PUT', '/v1/flavors/a100', { pricePerGpuHour: 1 });
    expect(denied.statusCode).toBe(403);
    const { user } = await ensureUserWithQuota(db, {
      email: 'root@uni.edu',
      name: 'Root',
      role: 'admin',
      group: 'staff',
      grantSeconds: 0,
      periodStart: new Date('2026-09-01'),
      periodEnd: new Date('2027-02-01'),
    });
    const admin = (await createUserToken(db, user.id, 'admin')).secret;
    const set = await call(admin, 'PUT', '/v1/flavors/h100', { pricePerGpuHour: 4.25 });
    expect(set.json()).toEqual({ name: 'h100', pricePerGpuHour: 4.25, capacity: 0 });
    const bad = await call(admin, 'PUT', '/v1/flavors/h100', { pricePerGpuHour: -1 });
    expect(bad.json()).toMatchObject({ code: 'VALIDATION', field: 'pricePerGpuHour' });
  });
});
