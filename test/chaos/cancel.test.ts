/**
 * Chaos: cancels at awkward moments, through the real API (POST /v1/jobs/:id/cancel) against the real scheduler and
 * the fake trainer (apps/scheduler/test/fixtures/fake-trainer.mjs: sleeps, exits 12 on SIGTERM), once with each
 * launcher: local (a child process per attempt) and Kubernetes (a pod per attempt on the test Kubernetes API server,
 * through the real launcher and its watch). A launcher wrapper can hold a launch half-way (the job is LAUNCHING, no
 * process or pod yet) and hold back exit reports, so each moment is reached deterministically; the race with the
 * admission pass uses seeded delays.
 *
 * Every job must end in one consistent state: one terminal transition (CANCELLED where a cancel was accepted), a
 * transition path the status table allows, at most one hold, one settle and one release per job (a release wherever
 * there was a hold), and at the end the member holds nothing and has used exactly what the ledger charged.
 */
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '@gpulab/api/src/app';
import { canTransition, isTerminal, type JobStatus } from '@gpulab/core';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import { admissionPass } from '@gpulab/scheduler/src/admission';
import type { SchedulerDeps } from '@gpulab/scheduler/src/deps';
import { recordAttemptEnd } from '@gpulab/scheduler/src/finish';
import type { ExitInfo, ExitListener, Launcher, LaunchRequest } from '@gpulab/scheduler/src/launchers/launcher';
import { Scheduler } from '@gpulab/scheduler/src/scheduler';
import {
  createTestDatabase,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { type ChaosCluster, DRIVERS, FAKE_TRAINER, makeLauncher, prng, startChaosCluster } from './fixtures/drivers';

const SEED = 20261201;
const RACES = 12;
const log = createLogger({ name: 'test', level: 'silent' });

/** A launcher with a gate that can hold a launch half-way and a switch that holds back exit reports. */
class GatedLauncher implements Launcher {
  gate: Promise<void> | null = null;
  /** Resolves when a launch reaches the gate. */
  arrived: Promise<LaunchRequest> | null = null;
  private onArrive: ((r: LaunchRequest) => void) | null = null;
  holdExits = false;
  readonly held: ExitInfo[] = [];
  private listener: ExitListener | null = null;

  constructor(private readonly inner: Launcher) {
    inner.onExit((e) => {
      if (!this.holdExits) return this.listener?.(e);
      this.held.push(e);
    });
  }

  get kind() {
    return this.inner.kind;
  }

  /** The next launch waits until the returned function is called. */
  holdNextLaunch(): () => void {
    let open!: () => void;
    this.gate = new Promise<void>((r) => {
      open = r;
    });
    this.arrived = new Promise<LaunchRequest>((r) => {
      this.onArrive = r;
    });
    return () => {
      this.gate = null;
      open();
    };
  }

  async launch(req: LaunchRequest) {
    const gate = this.gate;
    if (gate) {
      this.onArrive?.(req);
      await gate;
    }
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
  onExit(listener: ExitListener) {
    this.listener = listener;
  }
  close() {
    return this.inner.close();
  }
}

describe.each(DRIVERS)('%s launcher', (driver) => {
  let tdb: TestDatabase;
  let db: Db;
  let s3: TestS3;
  let redis: Redis;
  let queue: DispatchQueue;
  let app: FastifyInstance;
  let launcher: GatedLauncher;
  let deps: SchedulerDeps;
  let scheduler: Scheduler;
  let token: string;
  let membershipId: string;
  let cluster: ChaosCluster | null = null;

  beforeAll(async () => {
    const prefix = testRedisPrefix(`cancel-${driver}`);
    tdb = await createTestDatabase();
    db = createDb(tdb.url);
    s3 = await startTestS3();
    redis = createRedis(TEST_REDIS_URL);
    queue = new DispatchQueue(redis, prefix);
    await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 3_600_000, capacity: 4 });
    const { user, membership } = await ensureUserWithQuota(db, {
      email: 'cancel@uni.edu',
      name: 'Cancel',
      group: 'cancel',
      grantSeconds: 100 * 3600,
      periodStart: new Date('2026-01-01'),
      periodEnd: new Date('2027-12-31'),
    });
    membershipId = membership.id;
    token = (await createUserToken(db, user.id, 't')).secret;
    const clock = () => new Date();
    app = buildApp(
      { db, redis, queue, s3: s3.client, bucket: s3.bucket, clock, maxAttempts: 3, policy: TEST_POLICY },
      log,
    );
    await app.ready();
    const command = [process.execPath, FAKE_TRAINER];
    if (driver === 'kubernetes') cluster = await startChaosCluster({ gpus: 4, command });
    launcher = new GatedLauncher(
      makeLauncher(driver, {
        slots: 4,
        command,
        logDir: path.join(os.tmpdir(), `gpulab-cancel-${process.pid}`),
        log,
        clock,
        stopGraceMs: 3000,
        cluster,
      }),
    );
    deps = {
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
    };
    scheduler = new Scheduler(deps);
  });

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
    await tdb?.drop();
    await s3?.close();
  });

  async function submit(name: string): Promise<string> {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { authorization: `Bearer ${token}` },
      payload: { name, dataset: { uri: `s3://${s3.bucket}/datasets/x` }, resources: { maxHours: 0.5 } },
    });
    expect(res.statusCode).toBe(201);
    return res.json().id as string;
  }

  function cancel(id: string) {
    return app.inject({ method: 'POST', url: `/v1/jobs/${id}/cancel`, headers: { authorization: `Bearer ${token}` } });
  }

  const statusOf = async (id: string) => (await db.job.findUniqueOrThrow({ where: { id } })).status;

  async function until(id: string, statuses: JobStatus[], timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await scheduler.tick();
      const s = await statusOf(id);
      if (statuses.includes(s)) return s;
      if (Date.now() > deadline) throw new Error(`job ${id} stuck in ${s}, wanted ${statuses.join('|')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** One consistent end state; returns the transition path. */
  async function expectConsistent(id: string, terminal: JobStatus): Promise<string[]> {
    const job = await db.job.findUniqueOrThrow({
      where: { id },
      include: { transitions: { orderBy: { id: 'asc' } }, ledger: true },
    });
    const path_ = job.transitions.map((t) => t.to);
    expect({ id, status: job.status }).toEqual({ id, status: terminal });
    expect(job.transitions.filter((t) => isTerminal(t.to)).map((t) => t.to)).toEqual([terminal]);
    job.transitions.forEach((t, i) => {
      const from = i === 0 ? null : job.transitions[i - 1]!.to;
      expect({ i, from: t.from }).toEqual({ i, from });
      if (t.from) expect({ edge: `${t.from}->${t.to}`, ok: canTransition(t.from, t.to) }).toMatchObject({ ok: true });
    });
    expect(job.stopRequested).toBeNull();
    const entries = await db.quotaEntry.findMany({ where: { jobId: id } });
    const kinds = entries.map((e) => e.kind).sort();
    for (const k of new Set(kinds))
      expect({ id, kind: k, n: kinds.filter((x) => x === k).length }).toMatchObject({ n: 1 });
    const hold = entries.find((e) => e.kind === 'hold')?.seconds ?? 0;
    if (hold > 0) expect(kinds).toEqual(['hold', 'release', 'settle']);
    else expect(kinds).toEqual([]);
    const ledgerSeconds = job.ledger.reduce((s, r) => s + r.gpuSeconds, 0);
    const settled = entries.find((e) => e.kind === 'settle')?.seconds ?? 0;
    const released = entries.find((e) => e.kind === 'release')?.seconds ?? 0;
    expect({ settled, usedSeconds: job.usedSeconds }).toEqual({ settled: ledgerSeconds, usedSeconds: ledgerSeconds });
    expect(settled + released).toBe(hold);
    expect(job.costMicros).toBe(job.ledger.reduce((s, r) => s + r.amountMicros, 0n));
    return path_;
  }

  it('cancel during launch (LAUNCHING, no process yet): the trainer is stopped once it runs, CANCELLED once', async () => {
    const id = await submit('fake a1=sleep:60000,exit:0');
    const open = launcher.holdNextLaunch();
    const step = scheduler.tick();
    const req = await launcher.arrived!;
    expect(req.jobId).toBe(id);
    expect(await statusOf(id)).toBe('LAUNCHING');
    const res = await cancel(id);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id, status: 'LAUNCHING' });
    expect((await db.job.findUniqueOrThrow({ where: { id } })).stopRequested).toBe('cancelled');
    open();
    await step;
    await until(id, ['CANCELLED']);
    const p = await expectConsistent(id, 'CANCELLED');
    expect(p).toEqual(['QUEUED', 'ADMITTED', 'LAUNCHING', 'RUNNING', 'CANCELLED']);
    const attempts = await db.jobAttempt.findMany({ where: { jobId: id } });
    // stopped by SIGTERM: exit 12 once the trainer's handler is installed, or the signal itself if it came sooner (a
    // container killed by a signal reports exit code 128 + 15)
    const how = (a: { exitCode: number | null; signal: string | null }) =>
      a.exitCode === 12 ? 'exit 12' : a.exitCode === 143 ? 'SIGTERM' : a.signal;
    expect(attempts.map((a) => ({ attempt: a.attempt, end: how(a) }))).toEqual([
      { attempt: 1, end: expect.stringMatching(/^(exit 12|SIGTERM)$/) },
    ]);
    console.log(
      `cancel[${driver}]: held the launch of ${req.name} at the gate, cancelled (200), released it: ${p.join(' > ')}`,
    );
  });

  it('cancel while RETRYING: ends CANCELLED without launching another attempt', async () => {
    const id = await submit('fake a1=exit:11 a2=sleep:60000,exit:0');
    launcher.holdExits = true;
    await until(id, ['RUNNING']);
    const deadline = Date.now() + 10_000;
    while (launcher.held.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    launcher.holdExits = false;
    const e = launcher.held.splice(0)[0]!;
    expect({ job: e.jobId, code: e.code }).toEqual({ job: id, code: 11 });
    await recordAttemptEnd(deps, { ...e }); // what the scheduler's next step does, without its launch pass
    expect(await statusOf(id)).toBe('RETRYING');
    const res = await cancel(id);
    expect(res.statusCode).toBe(200);
    for (let i = 0; i < 5; i++) await scheduler.tick();
    await until(id, ['CANCELLED']);
    const p = await expectConsistent(id, 'CANCELLED');
    const attempts = await db.jobAttempt.findMany({ where: { jobId: id }, orderBy: { attempt: 'asc' } });
    console.log(
      `cancel[${driver}]: attempt 1 exited 11, cancelled in RETRYING: ${p.join(' > ')}; attempts ${attempts.length}`,
    );
    expect(p).toEqual(['QUEUED', 'ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING', 'CANCELLED']);
    expect(attempts.map((a) => a.attempt)).toEqual([1]);
  });

  it('cancel twice concurrently: both answered, one CANCELLED transition, the hold released once', async () => {
    const queued = await submit('fake a1=sleep:60000,exit:0');
    const [a, b] = await Promise.all([cancel(queued), cancel(queued)]);
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect([a.json().status, b.json().status]).toEqual(['CANCELLED', 'CANCELLED']);
    expect(await expectConsistent(queued, 'CANCELLED')).toEqual(['QUEUED', 'CANCELLED']);

    const running = await submit('fake a1=sleep:60000,exit:0');
    await until(running, ['RUNNING']);
    const both = await Promise.all([cancel(running), cancel(running), cancel(running)]);
    expect(both.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    await until(running, ['CANCELLED']);
    const p = await expectConsistent(running, 'CANCELLED');
    expect(p).toEqual(['QUEUED', 'ADMITTED', 'LAUNCHING', 'RUNNING', 'CANCELLED']);
    const again = await cancel(running);
    expect({ status: again.statusCode, job: again.json().status }).toEqual({ status: 200, job: 'CANCELLED' });
    expect(await expectConsistent(running, 'CANCELLED')).toEqual(p);
    console.log(`cancel[${driver}]: 2 concurrent cancels of a QUEUED job, 3 of a RUNNING job, then one more: all 200`);
  });

  it('cancel a finished job: 409 naming its status, nothing changed', async () => {
    const id = await submit('fake a1=sleep:50,exit:0');
    await until(id, ['SUCCEEDED']);
    const before = await expectConsistent(id, 'SUCCEEDED');
    const entries = await db.quotaEntry.count({ where: { jobId: id } });
    const res = await cancel(id);
    expect(res.statusCode).toBe(409);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: 'CONFLICT', status: 'SUCCEEDED' });
    expect(res.json().detail).toMatch(/SUCCEEDED/);
    expect(await expectConsistent(id, 'SUCCEEDED')).toEqual(before);
    expect(await db.quotaEntry.count({ where: { jobId: id } })).toBe(entries);
  });

  it(`cancel a queued job racing the admission pass (${RACES} seeded runs): one consistent end each`, async () => {
    const rand = prng(SEED);
    const outcomes: string[] = [];
    for (let k = 0; k < RACES; k++) {
      const id = await submit('fake a1=sleep:400,exit:0');
      // even runs race the admission pass alone (the cancel meets QUEUED or ADMITTED), odd runs a whole scheduler
      // step (admission, then launch: QUEUED, ADMITTED, LAUNCHING or RUNNING)
      const race = k % 2 === 0 ? 'admit' : 'step';
      const delay = Math.floor(rand() * (race === 'admit' ? 20 : 40));
      const [, res] = await Promise.all([
        race === 'admit' ? admissionPass(deps) : scheduler.tick(),
        new Promise((r) => setTimeout(r, delay)).then(() => cancel(id)),
      ]);
      expect(res.statusCode).toBe(200);
      const seen = (res.json() as { status: string }).status;
      await until(id, ['CANCELLED']);
      const p = await expectConsistent(id, 'CANCELLED');
      outcomes.push(`${race}+${delay}ms:${seen}<-${p.at(-2)}`);
    }
    console.log(
      `cancel[${driver}]: seed ${SEED}, <race>+<cancel delay>: <status answered> <- <cancelled from>: ${outcomes.join(', ')}`,
    );

    // the member's balance, over every job of this file
    const m = await db.membership.findUniqueOrThrow({ where: { id: membershipId } });
    const ledger = await db.costLedger.aggregate({ _sum: { gpuSeconds: true } });
    const settles = await db.quotaEntry.aggregate({ where: { kind: 'settle' }, _sum: { seconds: true } });
    expect({ held: m.heldSeconds, used: m.usedSeconds }).toEqual({
      held: 0,
      used: ledger._sum.gpuSeconds ?? 0,
    });
    expect(settles._sum.seconds ?? 0).toBe(m.usedSeconds);

    if (cluster) {
      // one pod per attempt of every job of this file, and none left behind (nor a Secret)
      const c = cluster;
      const deadline = Date.now() + 15_000;
      while ((c.pods().length || c.secrets().length) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const attempts = await db.jobAttempt.findMany({ select: { jobId: true, attempt: true } });
      expect([...c.created].sort()).toEqual(attempts.map((a) => `gpulab-${a.jobId}-${a.attempt}`).sort());
      expect({ pods: c.pods(), secrets: c.secrets() }).toEqual({ pods: [], secrets: [] });
      console.log(
        `cancel[${driver}]: ${c.created.length} pods for ${attempts.length} attempts; none left, no Secret left`,
      );
    }
  }, 120_000);
});
