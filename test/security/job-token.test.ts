/**
 * Security: the job token a trainer gets (GPULAB_JOB_TOKEN, issued by the scheduler per attempt) writes its own job's
 * events and nothing else, and stops working when its attempt is superseded or its job ends.
 *
 * Every route refusing job tokens is checked route by route in test/integration/api-hostile.test.ts (a token made
 * with issueToken); this file follows real tokens through their life: captured from the launch environment of the
 * real scheduler (local launcher, fake trainer), used against the datasets and job routes, then revoked by the
 * scheduler when attempt 2 replaces attempt 1 and when the job is cancelled. A revocation reaches an API process
 * within its token cache's lifetime (TOKEN_CACHE_TTL_MS, 5 s): the test measures it.
 */
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '@gpulab/api/src/app';
import { TOKEN_CACHE_TTL_MS } from '@gpulab/api/src/plugins/bearer-cache';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import type { ExitInfo, Launcher, LaunchRequest } from '@gpulab/scheduler/src/launchers/launcher';
import { LocalLauncher } from '@gpulab/scheduler/src/launchers/local';
import { Scheduler } from '@gpulab/scheduler/src/scheduler';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Redis } from 'ioredis';

const log = createLogger({ name: 'test', level: 'silent' });

/** The local launcher, remembering the job token each attempt was started with. */
class CapturingLauncher implements Launcher {
  readonly kind = 'local' as const;
  readonly tokens = new Map<string, string>();
  constructor(private readonly inner: LocalLauncher) {}
  launch(req: LaunchRequest) {
    this.tokens.set(`${req.jobId}/${req.attempt}`, req.env.GPULAB_JOB_TOKEN!);
    return this.inner.launch(req);
  }
  capacity() {
    return this.inner.capacity();
  }
  stop(name: string, graceMs: number) {
    return this.inner.stop(name, graceMs);
  }
  running() {
    return this.inner.running();
  }
  onExit(listener: (e: ExitInfo) => void) {
    this.inner.onExit(listener);
  }
  close() {
    return this.inner.close();
  }
}

let tdb: TestDatabase;
let db: Db;
let s3: TestS3;
let redis: Redis;
let queue: DispatchQueue;
let app: FastifyInstance;
let launcher: CapturingLauncher;
let scheduler: Scheduler;
const prefix = testRedisPrefix('job-token');

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, prefix);
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 3_600_000, capacity: 2 });
  await ensureFlavor(db, { name: 'a100', rateMicrosPerHour: 3_600_000, capacity: 0 });
  const clock = () => new Date();
  app = buildApp(
    { db, redis, queue, s3: s3.client, bucket: s3.bucket, clock, maxAttempts: 3, policy: TEST_POLICY },
    log,
  );
  await app.ready();
  launcher = new CapturingLauncher(
    new LocalLauncher({
      slots: 2,
      flavor: 'local',
      command: [process.execPath, path.join(REPO_ROOT, 'apps/scheduler/test/fixtures/fake-trainer.mjs')],
      cwd: REPO_ROOT,
      logDir: path.join(os.tmpdir(), `gpulab-job-token-${process.pid}`),
      baseEnv: { PATH: process.env.PATH },
      log,
      clock,
    }),
  );
  scheduler = new Scheduler({
    db,
    launcher,
    queue,
    clock,
    log,
    trainerEnv: {},
    stopGraceMs: 3000,
    intervalMs: 100,
    policy: TEST_POLICY,
    reservationGraceMs: 15 * 60_000,
  });
});

afterAll(async () => {
  await scheduler?.stop();
  await launcher?.close();
  await app?.close();
  await queue?.queue.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  redis?.disconnect();
  await db?.$disconnect();
  await tdb?.drop();
  await s3?.close();
});

async function user(email: string) {
  const { user } = await ensureUserWithQuota(db, {
    email,
    name: email,
    group: 'tokens',
    grantSeconds: 100 * 3600,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-12-31'),
  });
  return { userId: user.id, token: (await createUserToken(db, user.id, 't')).secret };
}

const call = (token: string, method: InjectOptions['method'], url: string, payload?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
const event = (token: string, jobId: string) =>
  call(token, 'POST', `/v1/internal/jobs/${jobId}/events`, { type: 'started', attempt: 1, backend: 'cpu' });

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await scheduler.tick();
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls until `token` is refused with 401; returns how long that took. */
async function revokedWithin(token: string, jobId: string): Promise<number> {
  const t = Date.now();
  for (;;) {
    const res = await event(token, jobId);
    if (res.statusCode === 401) return Date.now() - t;
    expect([204, 409]).toContain(res.statusCode); // still cached: its own job's events, or "job already ended"
    if (Date.now() - t > TOKEN_CACHE_TTL_MS + 2000) throw new Error('token still accepted after the cache TTL');
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('writes its own job’s events only, reads nothing, and is revoked when superseded and when the job ends', async () => {
  const alice = await user('alice@uni.edu');
  const bob = await user('bob@uni.edu');
  const submit = async (token: string, name: string, flavor = 'local') => {
    const res = await call(token, 'POST', '/v1/jobs', {
      name,
      dataset: { uri: `s3://${s3.bucket}/datasets/x` },
      resources: { flavor, maxHours: 0.5 },
    });
    expect(res.statusCode).toBe(201);
    return res.json().id as string;
  };
  const jobA = await submit(alice.token, 'fake a1=sleep:1500,exit:11 a2=sleep:60000,exit:0');
  const jobB = await submit(bob.token, 'fake a1=sleep:60000', 'a100'); // Bob's, waiting
  const aliceOther = await submit(alice.token, 'fake a1=sleep:60000', 'a100'); // Alice's other job

  await until(async () => launcher.tokens.has(`${jobA}/1`), 'attempt 1');
  const t1 = launcher.tokens.get(`${jobA}/1`)!;
  expect(t1).toMatch(/^gpj_/);
  expect((await event(t1, jobA)).statusCode).toBe(204);
  // not another user's job, nor another job of the same user
  expect((await event(t1, jobB)).statusCode).toBe(403);
  expect((await event(t1, aliceOther)).statusCode).toBe(403);

  // it reads nothing: not its own job, not datasets, not the owner's account
  const upload = { name: 'x', files: [{ path: 'train/a/1.png', size: 1, sha256: 'a'.repeat(64) }] };
  const refused: [InjectOptions['method'], string, unknown?][] = [
    ['GET', '/v1/datasets'],
    ['GET', '/v1/datasets/00000000-0000-4000-8000-000000000000'],
    ['POST', '/v1/datasets/uploads', upload],
    ['GET', `/v1/jobs/${jobA}`],
    ['GET', `/v1/jobs/${jobA}/artifacts`],
    ['GET', `/v1/jobs/${jobA}/logs`],
    ['GET', '/v1/jobs'],
    ['POST', `/v1/jobs/${jobA}/cancel`],
    ['POST', '/v1/jobs', { dataset: { uri: `s3://${s3.bucket}/datasets/x` } }],
    ['GET', '/v1/me'],
    ['GET', '/v1/me/tokens'],
    ['POST', '/v1/webhooks', { url: 'https://example.com/hook' }],
  ];
  for (const [method, url, body] of refused) {
    const res = await call(t1, method, url, body);
    expect({ route: `${method} ${url}`, status: res.statusCode }).toEqual({ route: `${method} ${url}`, status: 403 });
  }
  expect(await db.datasetUpload.count()).toBe(0);
  expect(await db.job.count()).toBe(3);

  // attempt 1 fails (exit 11); attempt 2 gets a new token and attempt 1's is revoked
  await until(async () => launcher.tokens.has(`${jobA}/2`), 'attempt 2');
  const t2 = launcher.tokens.get(`${jobA}/2`)!;
  expect(t2).not.toBe(t1);
  expect((await event(t2, jobA)).statusCode).toBe(204);
  const supersededMs = await revokedWithin(t1, jobA);

  // the job ends (cancelled): its last token is revoked too
  expect((await call(alice.token, 'POST', `/v1/jobs/${jobA}/cancel`)).statusCode).toBe(200);
  await until(
    async () => (await db.job.findUniqueOrThrow({ where: { id: jobA } })).status === 'CANCELLED',
    'CANCELLED',
  );
  const endedMs = await revokedWithin(t2, jobA);
  const live = await db.apiToken.count({ where: { jobId: jobA, revokedAt: null } });
  expect(live).toBe(0);
  console.log(
    `job-token: ${refused.length} routes refused (403), other jobs' events refused; attempt 1's token refused ` +
      `${supersededMs} ms after attempt 2 started, attempt 2's ${endedMs} ms after the job ended ` +
      `(token cache TTL ${TOKEN_CACHE_TTL_MS} ms)`,
  );
}, 60_000);
