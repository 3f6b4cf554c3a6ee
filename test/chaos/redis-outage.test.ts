/**
 * Chaos: Redis (a private redis-server, so other tests are untouched) goes down and comes back empty, while a job
 * runs through the scheduler — once with the local launcher and once with the Kubernetes launcher (a pod on the
 * test Kubernetes API server). Submissions keep being accepted — Postgres is the truth, the dispatch entry is only a
 * wake-up call; the job in flight runs on and its end is recorded and billed while Redis is still down (its output
 * goes to the live log bus, which waits); and the scheduler's reconciler puts every waiting job's dispatch entry
 * back within 30 s of the restart (measured on its injected clock, which runs with real time plus an offset).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '@gpulab/api/src/app';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
import { Scheduler } from '@gpulab/scheduler/src/scheduler';
import { createTestDatabase, startTestS3, TEST_POLICY, type TestDatabase, type TestS3 } from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { type ChaosCluster, DRIVERS, FAKE_TRAINER, makeLauncher, startChaosCluster } from './fixtures/drivers';

describe.each(DRIVERS)('%s launcher', (driver) => {
  let tdb: TestDatabase;
  let db: Db;
  let s3: TestS3;
  let server: ChildProcess | null = null;
  let port: number;
  let dir: string;
  let cluster: ChaosCluster | null = null;
  const log = createLogger({ name: 'test', level: 'silent' });

  function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
      srv.on('error', reject);
    });
  }

  async function startRedis(): Promise<void> {
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      {
        stdio: 'ignore',
      },
    );
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((r) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.end();
          r(true);
        });
        s.on('error', () => r(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not start');
  }

  async function stopRedis(): Promise<void> {
    const p = server;
    server = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGKILL');
    });
  }

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = createDb(tdb.url);
    s3 = await startTestS3();
    dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-redis-'));
    port = await freePort();
    await startRedis();
    if (driver === 'kubernetes')
      cluster = await startChaosCluster({ gpus: 1, command: [process.execPath, FAKE_TRAINER] });
  });
  afterAll(async () => {
    await stopRedis();
    await cluster?.close();
    cluster = null;
    await s3.close();
    await db.$disconnect();
    await tdb.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts jobs and finishes the one in flight while Redis is down; every dispatch entry is back within 30 s', async () => {
    const url = `redis://127.0.0.1:${port}`;
    const apiRedis: Redis = createRedis(url);
    const schedRedis: Redis = createRedis(url);
    const apiQueue = new DispatchQueue(apiRedis, 'chaos');
    const schedQueue = new DispatchQueue(schedRedis, 'chaos');
    // the scheduler's clock: real time plus an offset the test moves forward
    let offset = Date.parse('2026-11-28T12:00:00Z') - Date.now();
    const clock = () => new Date(Date.now() + offset);
    await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 3_600_000, capacity: 1 });
    await ensureFlavor(db, { name: 'a100', rateMicrosPerHour: 1_000_000, capacity: 0 });
    const { user, membership } = await ensureUserWithQuota(db, {
      email: 'redis@uni.edu',
      name: 'Redis',
      group: 'redis',
      grantSeconds: 100 * 3600,
      periodStart: new Date('2026-01-01'),
      periodEnd: new Date('2027-12-31'),
    });
    const token = (await createUserToken(db, user.id, 't')).secret;
    const app: FastifyInstance = buildApp(
      {
        db,
        redis: apiRedis,
        queue: apiQueue,
        s3: s3.client,
        bucket: s3.bucket,
        clock,
        maxAttempts: 3,
        policy: TEST_POLICY,
      },
      log,
    );
    await app.ready();
    const launcher = makeLauncher(driver, {
      slots: 1,
      command: [process.execPath, FAKE_TRAINER],
      logDir: dir,
      log,
      clock,
      stopGraceMs: 1000,
      cluster,
    });
    const scheduler = new Scheduler({
      db,
      launcher,
      queue: schedQueue,
      clock,
      log,
      logs: new LogBus(schedRedis, 'chaos'),
      trainerEnv: {},
      stopGraceMs: 1000,
      intervalMs: 100,
      policy: TEST_POLICY,
      reservationGraceMs: 60_000,
    });
    const submit = async (payload: Record<string, unknown>) => {
      const started = Date.now();
      const res = await app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { authorization: `Bearer ${token}` },
        payload: { dataset: { uri: `s3://${s3.bucket}/datasets/x` }, ...payload },
      });
      return { status: res.statusCode, id: res.json().id as string, ms: Date.now() - started };
    };
    // jobs for a GPU type nobody offers wait in QUEUED, so their dispatch entries must exist throughout
    const waiting = () => submit({ resources: { flavor: 'a100' } });
    const statusOf = async (id: string) => (await db.job.findUniqueOrThrow({ where: { id } })).status;
    const tickUntil = async (id: string, statuses: string[], ms: number) => {
      const deadline = Date.now() + ms;
      while (!statuses.includes(await statusOf(id))) {
        if (Date.now() > deadline) throw new Error(`job ${id} stuck in ${await statusOf(id)}`);
        await scheduler.tick();
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      const before = await waiting();
      expect(before.status).toBe(201);
      expect(await apiQueue.has(before.id)).toBe(true);
      // a job in flight through the launcher: it prints a line every 200 ms (to the live log bus) and ends after 2.5 s
      const inFlight = await submit({ name: 'fake a1=sleep:2500,exit:0,every:200', resources: { maxHours: 0.1 } });
      expect(inFlight.status).toBe(201);
      await tickUntil(inFlight.id, ['RUNNING'], 20_000);

      const downAt = Date.now();
      await stopRedis();
      const during = await waiting();
      expect(during.status).toBe(201); // durable in Postgres; the entry is repaired later
      expect(during.ms).toBeLessThan(5000);
      expect(await db.job.count({ where: { status: 'QUEUED' } })).toBe(2);
      // the job in flight runs to its end and is settled with Redis still down
      await tickUntil(inFlight.id, ['SUCCEEDED', 'FAILED'], 20_000);
      const finishedDownFor = Date.now() - downAt;
      expect(server).toBeNull(); // still down
      const job = await db.job.findUniqueOrThrow({
        where: { id: inFlight.id },
        include: { ledger: true, attempts: true },
      });
      expect(job.status).toBe('SUCCEEDED');
      expect(job.attempts).toHaveLength(1);
      expect(job.usedSeconds).toBeGreaterThanOrEqual(2);
      expect({ used: job.usedSeconds, cost: job.costMicros }).toEqual({
        used: job.ledger.reduce((n, r) => n + r.gpuSeconds, 0),
        cost: job.ledger.reduce((n, r) => n + r.amountMicros, 0n),
      });
      const m = await db.membership.findUniqueOrThrow({ where: { id: membership.id } });
      expect(m.usedSeconds).toBe(job.usedSeconds);
      expect(m.heldSeconds).toBe(0); // the waiting jobs hold nothing; the finished one's hold is settled and released

      await startRedis(); // back, and empty
      await new Promise((r) => setTimeout(r, 500)); // clients reconnect
      expect(await apiQueue.has(before.id)).toBe(false);
      offset += 31_000;
      await scheduler.tick();
      expect(await schedQueue.has(before.id)).toBe(true);
      expect(await schedQueue.has(during.id)).toBe(true);
      console.log(
        `redis-outage[${driver}]: redis-server SIGKILLed with a job RUNNING; submitted during the outage in ` +
          `${during.ms} ms (201); the job in flight SUCCEEDED ${finishedDownFor} ms into the outage, charged ` +
          `${job.usedSeconds} GPU-s; restarted empty: both waiting jobs re-enqueued at the first step 31 s (clock) on`,
      );
    } finally {
      await scheduler.stop();
      await launcher.close();
      await app.close();
      await apiQueue.close().catch(() => undefined);
      await schedQueue.close().catch(() => undefined);
      apiRedis.disconnect();
      schedRedis.disconnect();
    }
  }, 60_000);
});
