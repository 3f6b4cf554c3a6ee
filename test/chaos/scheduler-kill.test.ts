/**
 * Chaos: the scheduler (its real main.ts, as a separate process) is killed with SIGKILL at seeded random moments
 * while jobs run through it, and restarted each time — once with the local launcher (20 kills; trainers are its
 * children and die with it) and once with the Kubernetes launcher (15 kills; trainer pods on the test Kubernetes API
 * server, which runs in this test process, outlive the scheduler as pods do; leadership is a Lease, and every fifth
 * restart comes up under a new identity, as a replacement pod, and waits out the dead one's lease).
 *
 * Each kill lands at a seeded moment: mostly 0–3 s after the scheduler reports it is running (recovery done, loop
 * started), sometimes 0.3–1.5 s after it was started (in start-up: election, recovery, adoption). With Kubernetes,
 * new jobs arrive at every restart so that kills keep landing on work in every phase.
 *
 * Afterwards: every job ended in a consistent terminal state; no attempt was launched twice and no two processes of
 * one job ever ran at once (the stand-in trainer logs its starts and ends); with Kubernetes, every attempt had one
 * pod, every job succeeded (a crash loses no pod), and no pod or Secret is left behind; every hold was settled or
 * released; every job's cost equals the sum of its ledger rows, and the member's usage is their sum.
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
import {
  type ChaosCluster,
  type Driver,
  FLAVOR,
  prng,
  schedulerDriverEnv,
  startChaosCluster,
} from './fixtures/drivers';

interface Plan {
  kills: number;
  seed: number;
  /** Jobs submitted before the first start, and at every restart. */
  jobsAtStart: number;
  jobsPerRestart: number;
  /** Each job's run time: min + seeded [0, span) ms. */
  runMs: [number, number];
}

const PLANS: Record<Driver, Plan> = {
  local: {
    kills: Number(process.env.CHAOS_KILLS ?? 20),
    seed: 20261128,
    jobsAtStart: 12,
    jobsPerRestart: 0,
    runMs: [300, 1500],
  },
  kubernetes: {
    kills: Number(process.env.CHAOS_KUBE_KILLS ?? 15),
    seed: 20261129,
    jobsAtStart: 6,
    jobsPerRestart: 2,
    runMs: [800, 2500],
  },
};
const SLOTS = 3;
/** A restart under a new leader identity every this many restarts (Kubernetes). */
const NEW_IDENTITY_EVERY = 5;

describe.each(Object.keys(PLANS) as Driver[])('%s launcher', (driver) => {
  const plan = PLANS[driver];
  let tdb: TestDatabase;
  let db: Db;
  let redis: Redis;
  let queue: DispatchQueue;
  let dir: string;
  let s3: TestS3;
  let cluster: ChaosCluster | null = null;
  const prefix = testRedisPrefix(`chaos-${driver}`);
  const trainer = path.join(REPO_ROOT, 'test', 'chaos', 'fixtures', 'chaos-trainer.mjs');

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = createDb(tdb.url);
    redis = createRedis(TEST_REDIS_URL);
    queue = new DispatchQueue(redis, prefix);
    s3 = await startTestS3();
    dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-chaos-'));
    writeFileSync(path.join(dir, 'launches.log'), '');
    if (driver === 'kubernetes') {
      cluster = await startChaosCluster({
        gpus: SLOTS,
        command: [process.execPath, trainer, path.join(dir, 'launches.log')],
      });
      cluster.kube.writeKubeconfig(path.join(dir, 'kubeconfig'));
    }
  });
  afterAll(async () => {
    await cluster?.close();
    await queue?.queue.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    redis?.disconnect();
    await db?.$disconnect();
    await tdb?.drop();
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The scheduler's main.ts as a child process; resolves `running` once it logs that its loop runs. */
  function startScheduler(identity: string): { p: ChildProcess; running: Promise<boolean>; stderr: () => string } {
    const p = spawn(process.execPath, ['--import', 'tsx', 'apps/scheduler/src/main.ts'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
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
        GPULAB_SCHEDULER_INTERVAL_MS: '100',
        GPULAB_STOP_GRACE_MS: '1000',
        GPULAB_MAX_ATTEMPTS: '20',
        GPULAB_DATA_DIR: dir,
        GPULAB_LOG_LEVEL: 'info',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...schedulerDriverEnv(driver, {
          slots: SLOTS,
          trainerCommand: `${process.execPath} ${trainer} ${path.join(dir, 'launches.log')}`,
          kubeconfigFile: path.join(dir, 'kubeconfig'),
          identity,
        }),
      },
    });
    let err = '';
    p.stderr?.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-20_000);
    });
    const running = new Promise<boolean>((resolve) => {
      let out = '';
      p.stdout?.on('data', (c: Buffer) => {
        out = (out + c.toString()).slice(-4096);
        if (out.includes('"msg":"scheduler running"')) resolve(true);
      });
      p.once('exit', () => resolve(false));
    });
    return { p, running, stderr: () => err };
  }

  function kill9(p: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  async function allTerminal(): Promise<boolean> {
    const jobs = await db.job.findMany({ select: { status: true } });
    return jobs.every((j) => isTerminal(j.status));
  }

  it(`survives ${plan.kills} kill -9s of the scheduler with nothing lost, doubled or misbilled`, async () => {
    const rand = prng(plan.seed);
    await ensureFlavor(db, { name: FLAVOR, rateMicrosPerHour: 3_600_000, capacity: SLOTS });
    const { user, membership } = await ensureUserWithQuota(db, {
      email: 'chaos@uni.edu',
      name: 'Chaos',
      group: 'chaos',
      grantSeconds: 100 * 3600,
      periodStart: new Date('2026-01-01'),
      periodEnd: new Date('2027-12-31'),
    });
    let submitted = 0;
    const submit = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const ms = plan.runMs[0] + Math.floor(rand() * plan.runMs[1]);
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
        submitted++;
      }
    };
    await submit(plan.jobsAtStart);

    const identity = (k: number) => `scheduler-${Math.floor(k / NEW_IDENTITY_EVERY)}`;
    const injected: string[] = [];
    const t0 = Date.now();
    for (let k = 0; k < plan.kills; k++) {
      if (k > 0) await submit(plan.jobsPerRestart);
      const started = Date.now();
      const s = startScheduler(identity(k));
      // most kills once it runs (0–3 s in); one in four during its start-up (0.3–1.5 s after the spawn)
      const inStartup = rand() < 0.25;
      const wait = inStartup ? 300 + Math.floor(rand() * 1200) : Math.floor(rand() * 3000);
      if (inStartup) await new Promise((r) => setTimeout(r, wait));
      else {
        let timer: NodeJS.Timeout | undefined;
        const ok = await Promise.race([s.running, new Promise((r) => (timer = setTimeout(() => r(false), 60_000)))]);
        clearTimeout(timer);
        if (!ok) throw new Error(`scheduler ${k} never ran:\n${s.stderr().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, wait));
      }
      await kill9(s.p);
      injected.push(
        `${inStartup ? 'start+' : 'run+'}${wait}ms${inStartup ? '' : ` (ran at +${Date.now() - started - wait})`}`,
      );
    }
    console.log(
      `chaos[${driver}]: seed ${plan.seed}, ${plan.kills} × SIGKILL (${Math.round((Date.now() - t0) / 1000)} s): ` +
        `${injected.join(', ')}`,
    );

    const last = startScheduler(identity(plan.kills));
    const deadline = Date.now() + 90_000;
    while (!(await allTerminal())) {
      if (Date.now() > deadline) {
        const left = await db.job.findMany({ select: { id: true, status: true, attempt: true, statusMessage: true } });
        throw new Error(
          `jobs did not all end: ${JSON.stringify(left)}\nscheduler stderr:\n${last.stderr().slice(-3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (cluster) {
      // finished pods and their Secrets are removed by whichever scheduler runs
      const c = cluster;
      const cleanBy = Date.now() + 15_000;
      while ((c.pods().length || c.secrets().length) && Date.now() < cleanBy)
        await new Promise((r) => setTimeout(r, 100));
    }
    await kill9(last.p);

    // every job ended, and one that succeeded ran to its end exactly once
    const jobs = await db.job.findMany({ include: { attempts: true, ledger: true } });
    expect(jobs).toHaveLength(submitted);
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

    if (cluster) {
      // one pod per attempt, ever; pods outlive the scheduler, so no job needed a second attempt to succeed
      // (an attempt whose pod was never created before a kill is retried: that one has no pod); nothing left over
      const created = cluster.created;
      expect(new Set(created).size).toBe(created.length);
      const attemptNames = new Set(jobs.flatMap((j) => j.attempts.map((a) => `gpulab-${j.id}-${a.attempt}`)));
      for (const name of created)
        expect({ pod: name, isAttempt: attemptNames.has(name) }).toMatchObject({ isAttempt: true });
      expect(keys.map((k) => `gpulab-${k.replace('/', '-')}`).sort()).toEqual([...created].sort());
      for (const j of jobs) expect({ job: j.id, status: j.status }).toEqual({ job: j.id, status: 'SUCCEEDED' });
      // a pod is the record of its end until the scheduler has recorded it: every trainer that ran to its end has
      // that end recorded (exit 0), and only an attempt that never got a pod is recorded as lost
      const exited = new Set(events.filter((e) => e.what === 'exit').map((e) => `gpulab-${e.job}-${e.attempt}`));
      for (const j of jobs)
        for (const a of j.attempts) {
          const name = `gpulab-${j.id}-${a.attempt}`;
          const end = a.signal === 'LOST' ? 'lost' : a.exitCode === 0 ? 'exit 0' : `${a.exitCode}/${a.signal}`;
          expect({ name, end, hadPod: created.includes(name) }).toEqual({
            name,
            end: exited.has(name) ? 'exit 0' : end,
            hadPod: end !== 'lost',
          });
        }
      expect({ pods: cluster.pods(), secrets: cluster.secrets() }).toEqual({ pods: [], secrets: [] });
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
    const attempts = jobs.reduce((n, j) => n + j.attempts.length, 0);
    const lost = jobs.reduce((n, j) => n + j.attempts.filter((a) => a.signal === 'LOST').length, 0);
    console.log(
      `chaos[${driver}]: ${jobs.length} jobs (${jobs.filter((j) => j.status === 'SUCCEEDED').length} succeeded), ` +
        `${attempts} attempts (${lost} lost to a kill), ${starts.length} trainer processes` +
        (cluster ? `, ${cluster.created.length} pods` : '') +
        `, ${used} GPU-s charged, held 0`,
    );
  }, 400_000);
});
