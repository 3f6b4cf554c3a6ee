/**
 * Chaos: the scheduler (its real main.ts, as a separate process with the local launcher) is killed with SIGKILL at
 * 20 seeded random moments while 12 jobs run through it, and restarted each time. Afterwards: every job ended in a
 * consistent terminal state, no attempt was launched twice and no two processes of one job ever ran at once, every
 * hold was settled or released, and every job's cost equals the sum of its ledger rows.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isTerminal, JobSpecSchema } from '@gpulab/core';
import { createDb, createJob, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import { EMBEDDED_S3_CREDENTIALS } from '@gpulab/storage';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestS3,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { Redis } from 'ioredis';

const KILLS = Number(process.env.CHAOS_KILLS ?? 20);
const JOBS = 12;
const SEED = 20261128;

let tdb: TestDatabase;
let db: Db;
let redis: Redis;
let queue: DispatchQueue;
let dir: string;
let s3: TestS3;
const prefix = testRedisPrefix('chaos');

/** Mulberry32: a tiny seeded PRNG, so a failing run can be replayed exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, prefix);
  s3 = await startTestS3();
  dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-chaos-'));
  writeFileSync(path.join(dir, 'launches.log'), '');
});
afterAll(async () => {
  await queue.queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  redis.disconnect();
  await db.$disconnect();
  await tdb.drop();
  await s3.close();
  rmSync(dir, { recursive: true, force: true });
});

function startScheduler(): ChildProcess {
  const trainer = path.join(REPO_ROOT, 'test', 'chaos', 'fixtures', 'chaos-trainer.mjs');
  return spawn(process.execPath, ['--import', 'tsx', 'apps/scheduler/src/main.ts'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: tdb.url,
      REDIS_URL: TEST_REDIS_URL,
      GPULAB_REDIS_PREFIX: prefix,
      GPULAB_S3_ENDPOINT: s3.endpoint,
      GPULAB_S3_BUCKET: s3.bucket,
      GPULAB_S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      GPULAB_S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
      GPULAB_LOCAL_SLOTS: '3',
      GPULAB_SCHEDULER_INTERVAL_MS: '100',
      GPULAB_STOP_GRACE_MS: '1000',
      GPULAB_MAX_ATTEMPTS: '20',
      GPULAB_TRAINER_COMMAND: `${process.execPath} ${trainer} ${path.join(dir, 'launches.log')}`,
      GPULAB_DATA_DIR: dir,
      GPULAB_LOG_LEVEL: 'warn',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
}

function kill9(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

async function allTerminal(): Promise<boolean> {
  const jobs = await db.job.findMany({ select: { status: true } });
  return jobs.every((j) => isTerminal(j.status));
}

it(`survives ${KILLS} kill -9s of the scheduler with nothing lost, doubled or misbilled`, async () => {
  const rand = prng(SEED);
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 3_600_000, capacity: 3 });
  const { user, membership } = await ensureUserWithQuota(db, {
    email: 'chaos@uni.edu',
    name: 'Chaos',
    group: 'chaos',
    grantSeconds: 100 * 3600,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-12-31'),
  });
  for (let i = 0; i < JOBS; i++) {
    const ms = 300 + Math.floor(rand() * 1500);
    const spec = JobSpecSchema.parse({ name: `chaos ${ms}`, dataset: { uri: 's3://gpulab/datasets/x' } });
    const { id } = await createJob(db, {
      userId: user.id,
      membershipId: membership.id,
      groupId: membership.groupId,
      spec,
      at: new Date(),
      maxAttempts: 20,
      maxRuntimeSeconds: 600,
    });
    await queue.enqueue(id);
  }

  const injected: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    const p = startScheduler();
    const wait = 1500 + Math.floor(rand() * 2500); // start-up takes ~1 s; kill somewhere in the work after it
    injected.push(wait);
    await new Promise((r) => setTimeout(r, wait));
    await kill9(p);
  }
  console.log(`chaos: seed ${SEED}, SIGKILL after ${injected.join(', ')} ms`);

  const last = startScheduler();
  let stderr = '';
  last.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const deadline = Date.now() + 60_000;
  while (!(await allTerminal())) {
    if (Date.now() > deadline) {
      const left = await db.job.findMany({ select: { id: true, status: true, attempt: true, statusMessage: true } });
      throw new Error(`jobs did not all end: ${JSON.stringify(left)}\nscheduler stderr:\n${stderr.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await kill9(last);

  // every job ended, and one that succeeded ran to its end exactly once
  const jobs = await db.job.findMany({ include: { attempts: true, ledger: true } });
  expect(jobs).toHaveLength(JOBS);
  for (const j of jobs) expect(['SUCCEEDED', 'FAILED']).toContain(j.status);
  expect(jobs.filter((j) => j.status === 'SUCCEEDED').length).toBeGreaterThan(0);

  // no attempt was launched twice; one job's processes never overlapped
  const events = readFileSync(path.join(dir, 'launches.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([what, job, attempt, pid, at]) => ({
      what: what!,
      job: job!,
      attempt: Number(attempt),
      pid,
      at: Number(at),
    }));
  const starts = events.filter((e) => e.what === 'start');
  const keys = starts.map((s) => `${s.job}/${s.attempt}`);
  expect(new Set(keys).size).toBe(keys.length);
  for (const j of jobs) {
    const runs = starts
      .filter((s) => s.job === j.id)
      .map((s) => ({
        start: s.at,
        end: events.find((e) => e.pid === s.pid && e.what !== 'start')?.at ?? Number.POSITIVE_INFINITY,
      }))
      .sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.end);
    // every process is one of the job's recorded attempts; every attempt recorded as started had its process (an
    // attempt whose process started just before a kill may have no recorded start: it is lost, and not charged)
    const attempts = new Set(j.attempts.map((a) => a.attempt));
    for (const s of starts.filter((x) => x.job === j.id))
      expect({ job: j.id, attempt: s.attempt, recorded: attempts.has(s.attempt) }).toEqual({
        job: j.id,
        attempt: s.attempt,
        recorded: true,
      });
    expect(runs.length).toBeGreaterThanOrEqual(j.attempts.filter((a) => a.startedAt !== null).length);
  }

  // money: holds all settled or released; each job's cost is its ledger; the member's usage is the sum
  const m = await db.membership.findUniqueOrThrow({ where: { id: membership.id } });
  expect(m.heldSeconds).toBe(0);
  let used = 0;
  for (const j of jobs) {
    const seconds = j.ledger.reduce((s, r) => s + r.gpuSeconds, 0);
    const amount = j.ledger.reduce((s, r) => s + r.amountMicros, 0n);
    expect({ job: j.id, seconds: j.usedSeconds, amount: j.costMicros }).toEqual({ job: j.id, seconds, amount });
    used += seconds;
    const entries = await db.quotaEntry.findMany({ where: { jobId: j.id } });
    expect(entries.map((e) => e.kind).sort()).toEqual(['hold', 'release', 'settle']);
  }
  expect(m.usedSeconds).toBe(used);
}, 300_000);
