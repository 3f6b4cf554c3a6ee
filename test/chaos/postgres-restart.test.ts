/**
 * Chaos: Postgres (a private server, so other tests are untouched) is stopped with `pg_ctl stop -m fast` in the
 * middle of a steady stream of job submissions and reads over HTTP, kept down for a few seconds, and started again.
 *
 * While it is down every request is answered quickly with 503 problem+json and Retry-After (never a 500, never a
 * hang); once it is back submissions succeed again. Nothing is half-written: every job has its QUEUED transition,
 * no transition lacks its job, and the jobs in the database are exactly those the client was told about. A commit
 * whose answer was lost in the outage is the one ambiguous case: the client retries with the same Idempotency-Key
 * (as the CLI does) and is answered with the job that was stored — 200, not a second job.
 */
import { buildApp } from '@gpulab/api/src/app';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import { startTestS3, TEST_POLICY, TEST_REDIS_URL, type TestS3, testRedisPrefix } from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { type PrivatePostgres, startPrivatePostgres } from './fixtures/private-postgres';

const SUBMITTERS = 4;
const DOWN_MS = 4000;
/** A request slower than this counts as a hang. */
const HANG_MS = 5000;

let pg: PrivatePostgres;
let db: Db;
let s3: TestS3;
let redis: Redis;
let queue: DispatchQueue;
let app: FastifyInstance;
let base: string;
const prefix = testRedisPrefix('pg-restart');

beforeAll(async () => {
  pg = await startPrivatePostgres();
  db = createDb(pg.url, { max: 10 });
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, prefix);
  app = buildApp(
    {
      db,
      redis,
      queue,
      s3: s3.client,
      bucket: s3.bucket,
      clock: () => new Date(),
      maxAttempts: 3,
      policy: TEST_POLICY,
    },
    createLogger({ name: 'test', level: 'silent' }),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}, 120_000);

afterAll(async () => {
  await app?.close();
  await queue?.queue.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  redis?.disconnect();
  await db?.$disconnect();
  await s3?.close();
  pg?.destroy();
});

interface Answer {
  what: 'submit' | 'read';
  key?: string;
  status: number;
  ms: number;
  startedAt: number;
  retryAfter: string | null;
  contentType: string | null;
  code?: string;
  id?: string;
}

async function call(token: string, method: string, url: string, body?: unknown, key?: string) {
  const startedAt = Date.now();
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(key ? { 'idempotency-key': key } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // not JSON: checked by the content-type assertion below
  }
  return {
    status: res.status,
    ms: Date.now() - startedAt,
    startedAt,
    retryAfter: res.headers.get('retry-after'),
    contentType: res.headers.get('content-type'),
    json,
  };
}

it('answers 503 + Retry-After while Postgres is down, recovers, and leaves nothing half-written', async () => {
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 });
  const { user } = await ensureUserWithQuota(db, {
    email: 'pg@uni.edu',
    name: 'Pg',
    group: 'pg-restart',
    grantSeconds: 100 * 3600,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-12-31'),
  });
  const token = (await createUserToken(db, user.id, 't')).secret;
  const body = { dataset: { uri: `s3://${s3.bucket}/datasets/x` }, epochs: 1 };

  const answers: Answer[] = [];
  /** key → the job id the client was finally given (201, or 200 for a replay of a commit whose answer was lost). */
  const given = new Map<string, { id: string; status: number }>();
  let stopStream = false;
  let next = 0;
  const record = (a: Answer) => answers.push(a);

  const submitter = async (w: number) => {
    while (!stopStream) {
      const key = `sub-${w}-${next++}`;
      // one logical submission: retried with the same key until it gets an answer with a job
      for (;;) {
        const r = await call(token, 'POST', '/v1/jobs', body, key);
        record({
          what: 'submit',
          key,
          status: r.status,
          ms: r.ms,
          startedAt: r.startedAt,
          retryAfter: r.retryAfter,
          contentType: r.contentType,
          code: r.json.code as string | undefined,
          id: r.json.id as string | undefined,
        });
        if (r.status === 201 || r.status === 200) {
          given.set(key, { id: String(r.json.id), status: r.status });
          break;
        }
        if (r.status !== 503) break; // recorded; fails the test below
        await new Promise((res) => setTimeout(res, 200)); // the client does not wait the full Retry-After here
      }
      await new Promise((res) => setTimeout(res, 20));
    }
  };
  const reader = async () => {
    while (!stopStream) {
      const ids = [...given.values()];
      const url = ids.length && next % 2 ? `/v1/jobs/${ids[ids.length - 1]!.id}` : '/v1/me';
      const r = await call(token, 'GET', url);
      record({
        what: 'read',
        status: r.status,
        ms: r.ms,
        startedAt: r.startedAt,
        retryAfter: r.retryAfter,
        contentType: r.contentType,
        code: r.json.code as string | undefined,
      });
      await new Promise((res) => setTimeout(res, 50));
    }
  };

  const stream = Promise.all([...Array.from({ length: SUBMITTERS }, (_, w) => submitter(w)), reader()]);
  await new Promise((r) => setTimeout(r, 2000));
  const stopAt = Date.now();
  await pg.stop();
  const downAt = Date.now();
  const ready = await call(token, 'GET', '/readyz');
  await new Promise((r) => setTimeout(r, DOWN_MS));
  const startAt = Date.now();
  await pg.start();
  const upAt = Date.now();
  await new Promise((r) => setTimeout(r, 3000));
  stopStream = true;
  await stream;
  console.log(
    `postgres-restart: pg_ctl stop -m fast at +${stopAt - answers[0]!.startedAt} ms (took ${downAt - stopAt} ms), ` +
      `down ${startAt - downAt} ms, start took ${upAt - startAt} ms; ${answers.length} requests, ` +
      `${given.size} submissions, submit statuses ${JSON.stringify(count(answers.filter((a) => a.what === 'submit').map((a) => a.status)))}, ` +
      `read statuses ${JSON.stringify(count(answers.filter((a) => a.what === 'read').map((a) => a.status)))}, ` +
      `max latency ${Math.max(...answers.map((a) => a.ms))} ms`,
  );

  // while it was down: 503 problem+json with Retry-After, quickly; never a 500
  expect(ready.status).toBe(503);
  expect(answers.filter((a) => ![200, 201, 503].includes(a.status))).toEqual([]);
  const unavailable = answers.filter((a) => a.status === 503);
  expect(unavailable.length).toBeGreaterThan(0);
  for (const a of unavailable) {
    expect({ retryAfter: a.retryAfter, code: a.code }).toEqual({ retryAfter: '5', code: 'UNAVAILABLE' });
    expect(a.contentType).toMatch(/^application\/problem\+json/);
  }
  expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(HANG_MS);
  // every 503 was answered to a request that overlapped the outage
  for (const a of unavailable) expect(a.startedAt).toBeLessThan(upAt + 1000);

  // after it was back: submissions succeed again (a request started after the restart got a new job)
  expect(answers.filter((a) => a.what === 'submit' && a.status === 201 && a.startedAt > upAt).length).toBeGreaterThan(
    5,
  );
  expect(answers.filter((a) => a.what === 'read' && a.status === 200 && a.startedAt > upAt).length).toBeGreaterThan(0);

  // nothing half-written: jobs and their first transitions are one statement
  const [jobs, missingFirst, orphans, extra] = await Promise.all([
    db.job.findMany({ select: { id: true, idempotencyKey: true, status: true } }),
    db.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM jobs j WHERE NOT EXISTS (
        SELECT 1 FROM job_transitions t WHERE t.job_id = j.id AND t."from" IS NULL AND t."to" = 'QUEUED')`,
    db.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM job_transitions t WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = t.job_id)`,
    db.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM job_transitions WHERE "to" <> 'QUEUED'`,
  ]);
  expect({
    missingFirst: Number(missingFirst[0]!.n),
    orphans: Number(orphans[0]!.n),
    extra: Number(extra[0]!.n),
  }).toEqual({ missingFirst: 0, orphans: 0, extra: 0 });
  expect(await db.jobTransition.count()).toBe(jobs.length);
  expect(jobs.every((j) => j.status === 'QUEUED')).toBe(true);

  // both sides agree: every job the client was given exists, and every job in the database was given to the client
  const clientIds = [...given.values()].map((g) => g.id).sort();
  expect(new Set(clientIds).size).toBe(clientIds.length); // one job per key
  expect(jobs.map((j) => j.id).sort()).toEqual(clientIds);
  for (const j of jobs) expect(given.get(j.idempotencyKey!)?.id).toBe(j.id);
  const replays = [...given.values()].filter((g) => g.status === 200).length;
  // a 200 is only ever the answer to a retry of a submission whose earlier attempt got a 503
  for (const [key, g] of given)
    if (g.status === 200) expect(answers.some((a) => a.key === key && a.status === 503)).toBe(true);
  console.log(
    `postgres-restart: client ${given.size} jobs (${given.size - replays} × 201, ${replays} × 200 replay of a ` +
      `commit whose answer was lost), database ${jobs.length} jobs, ${jobs.length} QUEUED transitions, 0 orphans`,
  );
}, 90_000);

function count<T extends string | number>(xs: T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
}
