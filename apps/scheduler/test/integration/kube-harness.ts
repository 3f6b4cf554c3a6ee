import path from 'node:path';
import { JobSpecSchema } from '@gpulab/core';
import { createDb, createJob, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestKube,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestKube,
  type TestKubeOptions,
  testRedisPrefix,
} from '@gpulab/testing';
import { KubeConfig } from '@kubernetes/client-node';
import type { Redis } from 'ioredis';
import type { SchedulerDeps } from '../../src/deps';
import { KubernetesLauncher, type KubernetesLauncherOptions } from '../../src/launchers/kubernetes';
import type { PodTemplate } from '../../src/launchers/kubernetes-pod';
import { Scheduler } from '../../src/scheduler';

export const NAMESPACE = 'gpulab-test';
export const TRAINER_IMAGE = 'gpulab/trainer:test';
export const BAD_IMAGE = 'gpulab/trainer:missing';
const FAKE_TRAINER = path.join(__dirname, '..', 'fixtures', 'fake-trainer.mjs');

export interface KubeWorld {
  kube: TestKube;
  db: Db;
  /** The live log bus the schedulers append trainer output to. */
  logs: LogBus;
  membership: { id: string; groupId: string; userId: string };
  makeLauncher(o?: {
    template?: Partial<PodTemplate>;
    launcher?: Partial<KubernetesLauncherOptions>;
  }): KubernetesLauncher;
  makeScheduler(launcher: KubernetesLauncher): Scheduler;
  submit(
    name: string,
    o?: { maxHours?: number; flavor?: string; gpus?: number; maxAttempts?: number },
  ): Promise<string>;
  until(
    jobId: string,
    statuses: string[],
    s: Scheduler,
    timeoutMs?: number,
  ): Promise<Awaited<ReturnType<Db['job']['findUniqueOrThrow']>>>;
  transitions(jobId: string): Promise<string[]>;
  /** Stops every scheduler and closes every launcher made so far (a failed test must not leave a second one). */
  cleanup(): Promise<void>;
  close(): Promise<void>;
}

export const log = createLogger({ name: 'kube-test', level: process.env.GPULAB_TEST_LOG_LEVEL ?? 'silent' });

/**
 * A scheduler world on the test Kubernetes API server: its own database, Redis prefix and cluster (two a100 nodes
 * with 1 GPU each behind the GPU taint, one t4 node), where the trainer image's entrypoint is the fake trainer.
 */
export async function startKubeWorld(opts: TestKubeOptions = {}): Promise<KubeWorld> {
  const tdb: TestDatabase = await createTestDatabase();
  const db = createDb(tdb.url);
  const redis: Redis = createRedis(TEST_REDIS_URL);
  const prefix = testRedisPrefix('kube');
  const queue = new DispatchQueue(redis, prefix);
  const logs = new LogBus(redis, prefix);
  const kube = await startTestKube({
    namespace: NAMESPACE,
    nodes: [
      gpuNode('a100-1', 'a100'),
      gpuNode('a100-2', 'a100'),
      { name: 't4-1', gpus: 1, labels: { 'gpulab.dev/flavor': 't4' } },
    ],
    images: { [TRAINER_IMAGE]: [process.execPath, FAKE_TRAINER] },
    badImages: [BAD_IMAGE],
    pullBackOffMs: 100,
    cwd: REPO_ROOT,
    baseEnv: { PATH: process.env.PATH },
    ...opts,
  });
  await kube.createSecret('s3-credentials', {
    GPULAB_S3_ACCESS_KEY_ID: 'AKIDTEST',
    GPULAB_S3_SECRET_ACCESS_KEY: 'shh',
  });
  await ensureFlavor(db, { name: 'a100', rateMicrosPerHour: 3_600_000, capacity: 2 });
  await ensureFlavor(db, { name: 't4', rateMicrosPerHour: 1_800_000, capacity: 1 });
  const { user, membership: m } = await ensureUserWithQuota(db, {
    email: 'k@uni.edu',
    name: 'K',
    group: 'g',
    grantSeconds: 360_000,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-01-01'),
  });
  const membership = { id: m.id, groupId: m.groupId, userId: user.id };
  const launchers: KubernetesLauncher[] = [];
  const schedulers: Scheduler[] = [];

  const world: KubeWorld = {
    kube,
    db,
    logs,
    membership,
    makeLauncher(o = {}) {
      const kc = new KubeConfig();
      kc.loadFromOptions(kube.kubeconfig());
      const l = new KubernetesLauncher({
        kubeConfig: kc,
        template: {
          namespace: NAMESPACE,
          image: TRAINER_IMAGE,
          imagePullPolicy: 'IfNotPresent',
          command: null,
          flavorLabel: 'gpulab.dev/flavor',
          flavorValues: {},
          gpuTaints: ['nvidia.com/gpu'],
          s3SecretName: 's3-credentials',
          serviceAccountName: null,
          terminationGraceSeconds: 5,
          deadlineMarginSeconds: 60,
          cpuPerGpu: null,
          memoryGiBPerGpu: null,
          ...o.template,
        },
        capacity: { subtractForeignPods: true },
        log,
        clock: () => new Date(),
        stuckTimeoutMs: 800,
        startTimeoutMs: 10_000,
        finishedPodTtlMs: 100,
        capacityCacheMs: 0,
        watch: { minBackoffMs: 50, maxBackoffMs: 400, timeoutSeconds: 60 },
        logRetryMs: 100,
        ...o.launcher,
      });
      launchers.push(l);
      return l;
    },
    makeScheduler(launcher) {
      const deps: SchedulerDeps = {
        db,
        launcher,
        queue,
        clock: () => new Date(),
        log,
        trainerEnv: {
          GPULAB_API_URL: 'http://127.0.0.1:9',
          GPULAB_S3_ENDPOINT: 'http://127.0.0.1:9',
          GPULAB_S3_ACCESS_KEY_ID: 'AKIDTEST',
          GPULAB_S3_SECRET_ACCESS_KEY: 'shh',
        },
        stopGraceMs: 5000,
        policy: TEST_POLICY,
        reservationGraceMs: 15 * 60_000,
        intervalMs: 100,
        logs,
      };
      const s = new Scheduler(deps);
      schedulers.push(s);
      return s;
    },
    async submit(name, o = {}) {
      const maxHours = o.maxHours ?? 0.5;
      const spec = JobSpecSchema.parse({
        name,
        dataset: { uri: 's3://gpulab/datasets/x' },
        resources: { maxHours, flavor: o.flavor ?? 'a100', gpus: o.gpus ?? 1 },
      });
      const { id } = await createJob(db, {
        userId: membership.userId,
        membershipId: membership.id,
        groupId: membership.groupId,
        spec,
        at: new Date(),
        maxAttempts: o.maxAttempts ?? 2,
        maxRuntimeSeconds: Math.round(maxHours * 3600),
      });
      return id;
    },
    async until(jobId, statuses, s, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await s.tick();
        const job = await db.job.findUniqueOrThrow({ where: { id: jobId } });
        if (statuses.includes(job.status)) return job;
        if (Date.now() > deadline) throw new Error(`job stuck in ${job.status}: ${job.statusMessage ?? ''}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async transitions(jobId) {
      return (await db.jobTransition.findMany({ where: { jobId }, orderBy: { id: 'asc' } })).map(
        (t) => `${t.to}:${t.reason}`,
      );
    },
    async cleanup() {
      for (const s of schedulers.splice(0)) await s.stop();
      for (const l of launchers.splice(0)) await l.close();
      kube.http.faults.length = 0;
    },
    async close() {
      await world.cleanup();
      await kube.close();
      await queue.queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      redis.disconnect();
      await db.$disconnect();
      await tdb.drop();
    },
  };
  return world;
}

function gpuNode(name: string, flavor: string) {
  return {
    name,
    gpus: 1,
    labels: { 'gpulab.dev/flavor': flavor },
    taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' as const }],
  };
}

/** Polls `fn` until it returns something other than undefined. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
