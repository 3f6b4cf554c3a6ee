/**
 * Chaos: Redis (a private redis-server, so other tests are untouched) goes down and comes back empty. Submissions
 * keep being accepted — Postgres is the truth, the dispatch entry is only a wake-up call — and the scheduler's
 * reconciler puts every waiting job's dispatch entry back within 30 s of the restart (measured on its injected clock).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '@gpulab/api/src/app';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import { LocalLauncher } from '@gpulab/scheduler/src/launchers/local';
import { Scheduler } from '@gpulab/scheduler/src/scheduler';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestS3,
  TEST_POLICY,
  type TestDatabase,
  type TestS3,
} from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';

let tdb: TestDatabase;
let db: Db;
let s3: TestS3;
let server: ChildProcess | null = null;
let port: number;
let dir: string;
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
});
afterAll(async () => {
  await stopRedis();
  await s3.close();
  await db.$disconnect();
  await tdb.drop();
  rmSync(dir, { recursive: true, force: true });
});

it('accepts jobs while Redis is down and restores every dispatch entry within 30 s of an empty restart', async () => {
  const url = `redis://127.0.0.1:${port}`;
  const apiRedis: Redis = createRedis(url);
  const schedRedis: Redis = createRedis(url);
  const apiQueue = new DispatchQueue(apiRedis, 'chaos');
  const schedQueue = new DispatchQueue(schedRedis, 'chaos');
  let now = Date.parse('2026-11-28T12:00:00Z');
  const clock = () => new Date(now);
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 });
  await ensureFlavor(db, { name: 'a100', rateMicrosPerHour: 1_000_000, capacity: 0 });
  const { user } = await ensureUserWithQuota(db, {
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
  const launcher = new LocalLauncher({
    slots: 1,
    flavor: 'local',
    command: [process.execPath, '-e', ''],
    cwd: REPO_ROOT,
    logDir: dir,
    baseEnv: {},
    log,
    clock,
  });
  const scheduler = new Scheduler({
    db,
    launcher,
    queue: schedQueue,
    clock,
    log,
    trainerEnv: {},
    stopGraceMs: 1000,
    intervalMs: 100,
    policy: TEST_POLICY,
    reservationGraceMs: 60_000,
  });
  // jobs for a GPU type nobody offers: they wait in QUEUED, so their dispatch entries must exist throughout
  const submit = async () => {
    const started = Date.now();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { authorization: `Bearer ${token}` },
      payload: { dataset: { uri: `s3://${s3.bucket}/datasets/x` }, resources: { flavor: 'a100' } },
    });
    return { status: res.statusCode, id: res.json().id as string, ms: Date.now() - started };
  };
  try {
    const before = await submit();
    expect(before.status).toBe(201);
    expect(await apiQueue.has(before.id)).toBe(true);

    await stopRedis();
    const during = await submit();
    expect(during.status).toBe(201); // durable in Postgres; the entry is repaired later
    expect(during.ms).toBeLessThan(5000);
    expect(await db.job.count({ where: { status: 'QUEUED' } })).toBe(2);

    await startRedis(); // back, and empty
    await new Promise((r) => setTimeout(r, 500)); // clients reconnect
    expect(await apiQueue.has(before.id)).toBe(false);
    now += 31_000;
    await scheduler.tick();
    expect(await schedQueue.has(before.id)).toBe(true);
    expect(await schedQueue.has(during.id)).toBe(true);
  } finally {
    await scheduler.stop();
    await app.close();
    await apiQueue.close().catch(() => undefined);
    await schedQueue.close().catch(() => undefined);
    apiRedis.disconnect();
    schedRedis.disconnect();
  }
}, 60_000);
