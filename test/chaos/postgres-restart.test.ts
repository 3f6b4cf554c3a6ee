/**
 * Chaos: Postgres (a private server, so other tests are untouched) is stopped with `pg_ctl stop -m fast` in the
 * middle of a steady stream of job submissions and reads over HTTP, kept down for a few seconds, and started again —
 * while the scheduler runs jobs through a launcher: once the local launcher, once the Kubernetes launcher (pods on the
 * test Kubernetes API server).
 *
 * While it is down every request is answered quickly with 503 problem+json and Retry-After (never a 500, never a
 * hang); once it is back submissions succeed again. Nothing is half-written: every job has its QUEUED transition,
 * no transition lacks its job, and the jobs in the database are exactly those the client was told about. A commit
 * whose answer was lost in the outage is the one ambiguous case: the client retries with the same Idempotency-Key
 * (as the CLI does) and is answered with the job that was stored — 200, not a second job. (The stream submits to a
 * GPU type with no capacity, so its jobs stay QUEUED and the checks are exact.)
 *
 * The jobs in flight: one ends while Postgres is down (its end must be recorded once it is back, at the time it
 * really ended — not lost, not billed for the outage), one runs through the outage and ends after it, one waits for
 * a GPU and runs after. Each succeeds with one attempt (with Kubernetes, one pod, none left behind), holds are
 * settled and released, and each job's cost is its ledger.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '@gpulab/api/src/app';
import { JobSpecSchema } from '@gpulab/core';
import { createDb, createJob, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import type { Launcher } from '@gpulab/scheduler/src/launchers/launcher';
import { Scheduler } from '@gpulab/scheduler/src/scheduler';
import { startTestS3, TEST_POLICY, TEST_REDIS_URL, type TestS3, testRedisPrefix } from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { type ChaosCluster, DRIVERS, FAKE_TRAINER, FLAVOR, makeLauncher, startChaosCluster } from './fixtures/drivers';
import { type PrivatePostgres, startPrivatePostgres } from './fixtures/private-postgres';

const SUBMITTERS = 4;
const DOWN_MS = 4000;
/** A request slower than this counts as a hang. */
const HANG_MS = 5000;
/** The jobs in flight (ms each runs): ends during the outage, runs through it, waits for a GPU and runs after. */
const IN_FLIGHT = [3500, 9000, 1000];
const log = createLogger({ name: 'test', level: 'silent' });

/** The API's base URL (of the driver's run under way). */
let base: string;

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

describe.each(DRIVERS)('%s launcher', (driver) => {
  let pg: PrivatePostgres;
  let db: Db;
  let s3: TestS3;
  let redis: Redis;
  let queue: DispatchQueue;
  let app: FastifyInstance;
  let dir: string;
  let cluster: ChaosCluster | null = null;
  let launcher: Launcher | null = null;
  let scheduler: Scheduler | null = null;

  beforeAll(async () => {
    const prefix = testRedisPrefix(`pg-restart-${driver}`);
    dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-pg-restart-'));
    if (driver === 'kubernetes')
      cluster = await startChaosCluster({ gpus: 2, command: [process.execPath, FAKE_TRAINER] });
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
      log,
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  }, 120_000);

  afterAll(async () => {
    await scheduler?.stop();
    await launcher?.close();
    await cluster?.close();
    cluster = null;
    await app?.close();
    await queue?.queue.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    redis?.disconnect();
    await db?.$disconnect();
    await s3?.close();
    pg?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 + Retry-After while Postgres is down, recovers, leaves nothing half-written, loses no job in flight', async () => {
    await ensureFlavor(db, { name: FLAVOR, rateMicrosPerHour: 3_600_000, capacity: 2 });
    await ensureFlavor(db, { name: 'a100', rateMicrosPerHour: 1_000_000, capacity: 0 });
    const { user } = await ensureUserWithQuota(db, {
      email: 'pg@uni.edu',
      name: 'Pg',
      group: 'pg-restart',
      grantSeconds: 100 * 3600,
      periodStart: new Date('2026-01-01'),
      periodEnd: new Date('2027-12-31'),
    });
    const token = (await createUserToken(db, user.id, 't')).secret;
    // the stream's jobs ask for a GPU type nobody offers: they stay QUEUED
    const body = { dataset: { uri: `s3://${s3.bucket}/datasets/x` }, epochs: 1, resources: { flavor: 'a100' } };

    // the jobs in flight, another member's, through the scheduler and the driver's launcher
    const { user: runner, membership } = await ensureUserWithQuota(db, {
      email: 'runner@uni.edu',
      name: 'Runner',
      group: 'pg-restart',
      grantSeconds: 100 * 3600,
      periodStart: new Date('2026-01-01'),
      periodEnd: new Date('2027-12-31'),
    });
    const flying: string[] = [];
    for (const ms of IN_FLIGHT) {
      const { id } = await createJob(db, {
        userId: runner.id,
        membershipId: membership.id,
        groupId: membership.groupId,
        spec: JobSpecSchema.parse({
          name: `fake a1=sleep:${ms},exit:0`,
          dataset: { uri: `s3://${s3.bucket}/datasets/x` },
          resources: { flavor: FLAVOR, maxHours: 0.1 },
        }),
        at: new Date(),
        maxAttempts: 3,
        maxRuntimeSeconds: 360,
      });
      flying.push(id);
    }
    const clock = () => new Date();
    launcher = makeLauncher(driver, {
      slots: 2,
      command: [process.execPath, FAKE_TRAINER],
      logDir: dir,
      log,
      clock,
      stopGraceMs: 2000,
      cluster,
    });
    scheduler = new Scheduler({
      db,
      launcher,
      queue,
      clock,
      log,
      trainerEnv: {},
      stopGraceMs: 2000,
      intervalMs: 200,
      policy: TEST_POLICY,
      reservationGraceMs: 60_000,
    });
    await scheduler.recover();
    scheduler.start();
    const statuses = async () =>
      (await db.job.findMany({ where: { id: { in: flying } }, select: { id: true, status: true } })).map(
        (j) => `${flying.indexOf(j.id)}:${j.status}`,
      );
    const runningBy = Date.now() + 30_000;
    for (;;) {
      const st = (await statuses()).sort();
      if (st[0] === '0:RUNNING' && st[1] === '1:RUNNING') break;
      if (Date.now() > runningBy) throw new Error(`jobs in flight did not start: ${st.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const runningAt = Date.now();

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
      `postgres-restart[${driver}]: pg_ctl stop -m fast at +${stopAt - answers[0]!.startedAt} ms (took ${downAt - stopAt} ms), ` +
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
    expect(answers.filter((a) => a.what === 'read' && a.status === 200 && a.startedAt > upAt).length).toBeGreaterThan(
      0,
    );

    // the jobs in flight: each ends SUCCEEDED after one attempt; the one that ended during the outage is recorded as
    // ending then (not when Postgres came back), and nobody is billed for the outage
    const endBy = Date.now() + 60_000;
    while ((await statuses()).some((x) => !x.endsWith(':SUCCEEDED') && !x.endsWith(':FAILED'))) {
      if (Date.now() > endBy) throw new Error(`jobs in flight did not end: ${(await statuses()).join(', ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await scheduler.stop();
    const ran = await db.job.findMany({ where: { id: { in: flying } }, include: { attempts: true, ledger: true } });
    ran.sort((a, b) => flying.indexOf(a.id) - flying.indexOf(b.id));
    for (const j of ran) {
      expect({ job: flying.indexOf(j.id), status: j.status, attempts: j.attempts.length }).toEqual({
        job: flying.indexOf(j.id),
        status: 'SUCCEEDED',
        attempts: 1,
      });
      expect({ used: j.usedSeconds, cost: j.costMicros }).toEqual({
        used: j.ledger.reduce((n, r) => n + r.gpuSeconds, 0),
        cost: j.ledger.reduce((n, r) => n + r.amountMicros, 0n),
      });
      const ranMs = j.attempts[0]!.endedAt!.getTime() - j.attempts[0]!.startedAt!.getTime();
      expect(j.usedSeconds).toBeLessThanOrEqual(Math.ceil(ranMs / 1000) + 1);
    }
    const endedInOutage = ran[0]!.attempts[0]!.endedAt!.getTime();
    expect(endedInOutage).toBeGreaterThan(stopAt);
    expect(endedInOutage).toBeLessThan(startAt);
    expect(ran[0]!.usedSeconds).toBeLessThanOrEqual(Math.ceil(IN_FLIGHT[0]! / 1000) + 1);
    expect(ran[1]!.attempts[0]!.endedAt!.getTime()).toBeGreaterThan(upAt);
    const runnerNow = await db.membership.findUniqueOrThrow({ where: { id: membership.id } });
    expect({ held: runnerNow.heldSeconds, used: runnerNow.usedSeconds }).toEqual({
      held: 0,
      used: ran.reduce((n, j) => n + j.usedSeconds, 0),
    });
    let pods = '';
    if (cluster) {
      const c = cluster;
      const cleanBy = Date.now() + 10_000;
      while ((c.pods().length || c.secrets().length) && Date.now() < cleanBy)
        await new Promise((r) => setTimeout(r, 100));
      expect([...c.created].sort()).toEqual(ran.map((j) => `gpulab-${j.id}-1`).sort());
      expect({ pods: c.pods(), secrets: c.secrets() }).toEqual({ pods: [], secrets: [] });
      pods = `, ${c.created.length} pods (none left)`;
    }
    console.log(
      `postgres-restart[${driver}]: jobs in flight RUNNING ${stopAt - runningAt} ms before the stop; job 0 ended ` +
        `${endedInOutage - stopAt} ms after the stop began and was recorded after the restart; ` +
        `${ran.map((j) => `${j.status} ${j.usedSeconds} GPU-s`).join(', ')}${pods}`,
    );

    // nothing half-written: jobs and their first transitions are one statement
    const [jobs, missingFirst, orphans, extra] = await Promise.all([
      db.job.findMany({ where: { flavor: 'a100' }, select: { id: true, idempotencyKey: true, status: true } }),
      db.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM jobs j WHERE NOT EXISTS (
        SELECT 1 FROM job_transitions t WHERE t.job_id = j.id AND t."from" IS NULL AND t."to" = 'QUEUED')`,
      db.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM job_transitions t WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = t.job_id)`,
      db.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM job_transitions t JOIN jobs j ON j.id = t.job_id
      WHERE j.flavor = 'a100' AND t."to" <> 'QUEUED'`,
    ]);
    expect({
      missingFirst: Number(missingFirst[0]!.n),
      orphans: Number(orphans[0]!.n),
      extra: Number(extra[0]!.n),
    }).toEqual({ missingFirst: 0, orphans: 0, extra: 0 });
    expect(await db.jobTransition.count({ where: { job: { flavor: 'a100' } } })).toBe(jobs.length);
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
      `postgres-restart[${driver}]: client ${given.size} jobs (${given.size - replays} × 201, ${replays} × 200 replay of a ` +
        `commit whose answer was lost), database ${jobs.length} jobs, ${jobs.length} QUEUED transitions, 0 orphans`,
    );
  }, 90_000);
});

function count<T extends string | number>(xs: T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
}
