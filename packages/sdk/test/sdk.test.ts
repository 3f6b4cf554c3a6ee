/** The SDK against a real API server (Postgres, Redis, s3rver): typed calls, errors with code and field, retries. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestApi, type TestApi } from '@gpulab/api/test/helpers/app';
import type { LogBus } from '@gpulab/queue';
import { testRedisPrefix } from '@gpulab/testing';
import { GpulabApiError, GpulabClient } from '../src';

let t: TestApi;
let logs: LogBus;
let baseUrl: string;
let token: string;

beforeAll(async () => {
  t = await startTestApi({
    name: 'sdk',
    listen: true,
    deps: { rateLimit: { perMinute: 30, prefix: testRedisPrefix('sdk-rate') } },
    flavors: [{ name: 'local', rateMicrosPerHour: 2_000_000, capacity: 1 }],
  });
  ({ logs, url: baseUrl } = t);
  token = (await t.user('sdk@uni.edu', { group: 'sdk', hours: 2, password: 'a long enough password' })).token;
});
afterAll(() => t.close());

const spec = { dataset: { uri: 's3://gpulab-test/datasets/flowers' }, epochs: 3, resources: { maxHours: 0.5 } };

it('quotes, submits idempotently, lists, reads, follows logs and cancels a job', async () => {
  const api = new GpulabClient({ baseUrl, token });
  expect((await api.me()).quotas[0]).toMatchObject({ grantedHours: 2, freeHours: 2 });
  const q = await api.quote(spec);
  expect(q).toMatchObject({ gpuHours: 0.5, cost: 1, admitNow: true });

  const job = await api.jobs.submit(spec, { idempotencyKey: 'sdk-1' });
  expect(job).toMatchObject({ status: 'QUEUED', flavor: 'local', maxRuntimeSeconds: 1800 });
  expect((await api.jobs.submit(spec, { idempotencyKey: 'sdk-1' })).id).toBe(job.id);
  expect((await api.jobs.list({ status: ['QUEUED'] })).items.map((j) => j.id)).toEqual([job.id]);

  await logs.append(job.id, 1, 'hello from the trainer\n');
  expect(await api.jobs.logs(job.id)).toBe('hello from the trainer\n');
  const seen: string[] = [];
  const following = api.jobs.followLogs(job.id, (t) => seen.push(t));
  await new Promise((r) => setTimeout(r, 300));
  const cancelled = await api.jobs.cancel(job.id);
  expect(cancelled.status).toBe('CANCELLED');
  expect(await following).toBe('CANCELLED');
  expect(seen).toEqual(['hello from the trainer\n']);
  expect((await api.jobs.wait(job.id)).status).toBe('CANCELLED');
});

it('raises GpulabApiError with the code, status and offending field', async () => {
  const api = new GpulabClient({ baseUrl, token });
  const err = await api.jobs.submit({ ...spec, epochs: 0 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GpulabApiError);
  expect(err).toMatchObject({ status: 400, code: 'VALIDATION', field: 'epochs' });
  await expect(api.jobs.get('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({
    status: 404,
    code: 'NOT_FOUND',
  });
  await expect(new GpulabClient({ baseUrl, token: 'gpl_nope' }).me()).rejects.toMatchObject({
    code: 'UNAUTHENTICATED',
  });
});

it('signs in with a password and acts with the session cookie and CSRF token', async () => {
  let cookie = '';
  const cookieFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, {
      ...init,
      headers: { ...(init?.headers as object), ...(cookie ? { cookie } : {}) },
    });
    const set = res.headers.get('set-cookie');
    if (set) cookie = set.split(';')[0]!;
    return res;
  };
  const api = new GpulabClient({ baseUrl, fetch: cookieFetch });
  const { user } = await api.auth.login('sdk@uni.edu', 'a long enough password');
  expect(user.email).toBe('sdk@uni.edu');
  const created = await api.auth.createToken('from the sdk', 7);
  expect(created.token).toMatch(/^gpl_/);
  expect((await new GpulabClient({ baseUrl, token: created.token }).me()).email).toBe('sdk@uni.edu');
});

it('waits out a 429 with Retry-After on idempotent requests, and never retries a plain POST', async () => {
  // a server that is busy once: 429 with Retry-After: 1, then answers
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    if (hits === 1 || req.method === 'POST') {
      res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '1' });
      res.end(JSON.stringify({ code: 'RATE_LIMITED', detail: 'slow down', status: 429 }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'u', email: 'x@y', name: 'x', role: 'student', quotas: [] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const api = new GpulabClient({ baseUrl: url, token: 'gpl_x', retries: 2 });
    const started = Date.now();
    expect((await api.me()).email).toBe('x@y');
    expect(hits).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    hits = 10;
    await expect(api.jobs.cancel('j')).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 1 });
    expect(hits).toBe(11);
  } finally {
    server.close();
  }
});
