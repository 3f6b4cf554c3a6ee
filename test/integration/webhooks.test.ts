/**
 * Webhooks end to end: job endings and a low balance are written to the outbox with the change itself, delivered
 * once each with a verifiable HMAC signature, and retried with backoff after a receiver error.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JobStatus } from '@gpulab/core';
import { admitJob, createUserToken, type Db, ensureUserWithQuota, finishJob, meterJob, transition } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { WebhookSender } from '@gpulab/scheduler/src/webhooks';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../../apps/api/test/helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;
let receiver: http.Server;
let receiverUrl: string;
const received: { event: string; delivery: string; signature: string; body: string }[] = [];
let failNext = 0;
let now = new Date('2026-11-28T12:00:00Z');
const log = createLogger({ name: 'test', level: 'silent' });

beforeAll(async () => {
  t = await startTestApi({
    name: 'hooks',
    logger: log,
    deps: { clock: () => now, webhooks: { allowPrivate: true } },
    flavors: [{ name: 'local', rateMicrosPerHour: 3_600_000, capacity: 4 }],
  });
  ({ db, app } = t);
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end('busy');
        return;
      }
      received.push({
        event: String(req.headers['gpulab-event']),
        delivery: String(req.headers['gpulab-delivery']),
        signature: String(req.headers['gpulab-signature']),
        body,
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
});
afterAll(async () => {
  receiver.close();
  await t.close();
});

const sender = () => new WebhookSender({ db, log, clock: () => now, allowPrivate: true });

function verify(secret: string, signature: string, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature);
  if (!m) return false;
  return createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex') === m[2];
}

it('delivers each terminal state once, signed, and retries after a 500', async () => {
  const { user } = await ensureUserWithQuota(db, {
    email: 'hook@uni.edu',
    name: 'Hook',
    group: 'hooks',
    grantSeconds: 10 * 3600,
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  const token = (await createUserToken(db, user.id, 't')).secret;
  const auth = { authorization: `Bearer ${token}` };
  const bad = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth, payload: { url: 'ftp://x' } });
  expect(bad.json()).toMatchObject({ code: 'VALIDATION', field: 'url' });
  const created = await app.inject({
    method: 'POST',
    url: '/v1/webhooks',
    headers: auth,
    payload: { url: receiverUrl },
  });
  expect(created.statusCode).toBe(201);
  const { id: hookId, secret } = created.json();
  expect(secret).toMatch(/^whsec_/);

  const ends: JobStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'BUDGET_EXHAUSTED'];
  const jobs: string[] = [];
  for (const to of ends) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: auth,
      payload: { dataset: { uri: 's3://gpulab-test/datasets/x' }, resources: { maxHours: 0.5 } },
    });
    const id = res.json().id as string;
    jobs.push(id);
    for (const [from, next] of [
      ['QUEUED', 'ADMITTED'],
      ['ADMITTED', 'LAUNCHING'],
      ['LAUNCHING', 'RUNNING'],
    ] as const)
      await transition(db, { jobId: id, from, to: next, reason: 'admitted', at: now });
    const reason =
      to === 'SUCCEEDED'
        ? 'completed'
        : to === 'FAILED'
          ? 'user_error'
          : to === 'CANCELLED'
            ? 'cancelled'
            : to === 'TIMED_OUT'
              ? 'timed_out'
              : 'budget_exhausted';
    expect(await finishJob(db, { jobId: id, from: 'RUNNING', to, reason, at: now })).toBe(true);
    // announcing the same end again (a retried settlement) must not deliver twice
    expect(await finishJob(db, { jobId: id, from: 'RUNNING', to, reason, at: now })).toBe(false);
  }

  failNext = 1; // the first delivery attempt gets a 500
  await sender().runOnce();
  expect(received).toHaveLength(4);
  now = new Date(now.getTime() + 5_000);
  expect(await sender().runOnce()).toBe(0); // backoff: not due yet
  now = new Date(now.getTime() + 10_000);
  expect(await sender().runOnce()).toBe(1);
  expect(received).toHaveLength(5);

  expect(received.map((r) => r.event).sort()).toEqual([
    'job.budget_exhausted',
    'job.cancelled',
    'job.failed',
    'job.succeeded',
    'job.timed_out',
  ]);
  for (const r of received) {
    expect(verify(secret, r.signature, r.body)).toBe(true);
    expect(verify('whsec_wrong', r.signature, r.body)).toBe(false);
    const body = JSON.parse(r.body);
    expect(body).toMatchObject({ id: r.delivery, event: r.event, data: { job: { status: expect.any(String) } } });
    expect(jobs).toContain(body.data.job.id);
  }
  const deliveries = (
    await app.inject({ method: 'GET', url: `/v1/webhooks/${hookId}/deliveries`, headers: auth })
  ).json();
  expect(deliveries.items.map((d: { status: string }) => d.status)).toEqual(Array(5).fill('delivered'));
  const retried = deliveries.items.filter((d: { attempts: number }) => d.attempts === 2);
  expect(retried).toHaveLength(1);
  expect(retried[0]).toMatchObject({ lastStatusCode: 204 });
  await sender().runOnce();
  expect(received).toHaveLength(5);
});

it('announces a low balance once, when a job leaves less than 10% of the grant', async () => {
  received.length = 0;
  const { user, membership } = await ensureUserWithQuota(db, {
    email: 'low@uni.edu',
    name: 'Low',
    group: 'hooks',
    grantSeconds: 3600,
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  const token = (await createUserToken(db, user.id, 't')).secret;
  const auth = { authorization: `Bearer ${token}` };
  await app.inject({
    method: 'POST',
    url: '/v1/webhooks',
    headers: auth,
    payload: { url: receiverUrl, events: ['quota.low'] },
  });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: auth,
    payload: { dataset: { uri: 's3://gpulab-test/datasets/x' }, resources: { maxHours: 1 } },
  });
  const id = res.json().id as string;
  expect((await admitJob(db, { id, membershipId: membership.id, holdSeconds: 3600 }, now)).admitted).toBe(true);
  await transition(db, { jobId: id, from: 'ADMITTED', to: 'LAUNCHING', reason: 'launched', at: now });
  await transition(db, { jobId: id, from: 'LAUNCHING', to: 'RUNNING', reason: 'started', at: now });
  const start = Math.floor(now.getTime() / 3_600_000) * 3_600_000;
  await meterJob(db, {
    jobId: id,
    gpus: 1,
    rateMicrosPerHour: 3_600_000,
    capSeconds: 3600,
    intervals: [{ startMs: start, endMs: start + 3300_000 }], // 55 of the 60 minutes used
    now: new Date(start + 3300_000),
  });
  await finishJob(db, { jobId: id, from: 'RUNNING', to: 'SUCCEEDED', reason: 'completed', at: now });
  await sender().runOnce();
  expect(received.map((r) => r.event)).toEqual(['quota.low']);
  expect(JSON.parse(received[0]!.body).data).toMatchObject({ grantedHours: 1, freeHours: 300 / 3600 });
});
