import { rmSync } from 'node:fs';
import path from 'node:path';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota, setPassword } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createDispatchWorker, createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
import { EMBEDDED_S3_CREDENTIALS } from '@gpulab/storage';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestKube,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestKube,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import { KubeConfig } from '@kubernetes/client-node';
import type { Worker } from 'bullmq';
import { buildApp } from '../../apps/api/src/app';
import type { ApiDeps } from '../../apps/api/src/deps';
import type { SchedulerDeps } from '../../apps/scheduler/src/deps';
import { KubernetesLauncher } from '../../apps/scheduler/src/launchers/kubernetes';
import type { Launcher } from '../../apps/scheduler/src/launchers/launcher';
import { LocalLauncher } from '../../apps/scheduler/src/launchers/local';
import { Scheduler } from '../../apps/scheduler/src/scheduler';
import { trainerEnv } from '../../apps/scheduler/src/trainer-env';

export interface Stack {
  apiUrl: string;
  db: Db;
  s3: TestS3;
  scheduler: Scheduler;
  logDir: string;
  /** A student with a token and a quota. */
  addStudent(email: string, grantSeconds: number): Promise<{ userId: string; token: string; membershipId: string }>;
  /** A member of the stack's group (`cs-e2e`) with a token and a quota; a password lets them sign in to the dashboard. */
  addUser(u: NewUser): Promise<{ userId: string; token: string; membershipId: string; groupId: string }>;
  api<T = unknown>(
    token: string,
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T }>;
  waitForStatus(token: string, jobId: string, statuses: string[], timeoutMs: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface NewUser {
  email: string;
  grantSeconds: number;
  /** Global role, and role in the group (default student). */
  role?: 'student' | 'instructor' | 'admin';
  password?: string;
}

/**
 * The whole system in one test process, on the real components: a migrated Postgres database of its own, Redis
 * under a key prefix of its own, an s3rver, the Fastify API on a loopback port, and the scheduler with the local
 * launcher running the real trainer as child processes.
 */
export async function startStack(
  opts: { slots?: number; rateMicrosPerHour?: number; launcher?: 'local' | 'kubernetes' } = {},
): Promise<Stack> {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url);
  const s3 = await startTestS3();
  const prefix = testRedisPrefix('e2e');
  const redis = createRedis(TEST_REDIS_URL);
  const workerRedis = createRedis(TEST_REDIS_URL);
  const queue = new DispatchQueue(redis, prefix);
  const log = createLogger({ name: 'e2e', level: process.env.GPULAB_TEST_LOG_LEVEL ?? 'silent' });
  const clock = () => new Date();
  await ensureFlavor(db, {
    name: 'local',
    rateMicrosPerHour: opts.rateMicrosPerHour ?? 2_000_000,
    capacity: opts.slots ?? 1,
  });

  const apiDeps: ApiDeps = {
    db,
    redis,
    queue,
    s3: s3.client,
    bucket: s3.bucket,
    clock,
    maxAttempts: 3,
    policy: TEST_POLICY,
    logs: new LogBus(redis, prefix),
  };
  const app = buildApp(apiDeps, log);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const apiUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

  const logDir = path.join(s3.directory, '..', `${path.basename(s3.directory)}-logs`);
  const trainer = [process.execPath, '--import', 'tsx', 'apps/trainer/src/main.ts'];
  let kube: TestKube | null = null;
  let launcher: Launcher;
  if (opts.launcher === 'kubernetes') {
    // a test Kubernetes API server whose kubelet runs the trainer image as a local process: the real trainer
    kube = await startTestKube({
      namespace: 'gpulab-e2e',
      nodes: [{ name: 'gpu-1', gpus: opts.slots ?? 1, labels: { 'gpulab.dev/flavor': 'local' } }],
      images: { 'gpulab/trainer:e2e': trainer },
      cwd: REPO_ROOT,
      baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    await kube.createSecret('s3-credentials', {
      GPULAB_S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      GPULAB_S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    });
    const kc = new KubeConfig();
    kc.loadFromOptions(kube.kubeconfig());
    launcher = new KubernetesLauncher({
      kubeConfig: kc,
      template: {
        namespace: 'gpulab-e2e',
        image: 'gpulab/trainer:e2e',
        imagePullPolicy: 'IfNotPresent',
        command: null,
        flavorLabel: 'gpulab.dev/flavor',
        flavorValues: {},
        gpuTaints: [],
        s3SecretName: 's3-credentials',
        serviceAccountName: null,
        terminationGraceSeconds: 20,
        deadlineMarginSeconds: 60,
        cpuPerGpu: null,
        memoryGiBPerGpu: null,
      },
      capacity: { subtractForeignPods: true },
      log,
      clock,
      stuckTimeoutMs: 60_000,
      startTimeoutMs: 60_000,
      finishedPodTtlMs: 100,
      capacityCacheMs: 0,
      watch: { minBackoffMs: 50, maxBackoffMs: 1000, timeoutSeconds: 60 },
    });
  } else {
    launcher = new LocalLauncher({
      slots: opts.slots ?? 1,
      flavor: 'local',
      command: trainer,
      cwd: REPO_ROOT,
      logDir,
      baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME },
      log,
      clock,
    });
  }
  const deps: SchedulerDeps = {
    db,
    launcher,
    queue,
    clock,
    log,
    stopGraceMs: 20_000,
    policy: TEST_POLICY,
    reservationGraceMs: 15 * 60_000,
    intervalMs: 250,
    logs: new LogBus(redis, prefix),
    archive: { s3: s3.client, bucket: s3.bucket },
    trainerEnv: trainerEnv({
      apiUrl,
      s3: {
        endpoint: s3.endpoint,
        region: 'us-east-1',
        bucket: s3.bucket,
        forcePathStyle: true,
        ...EMBEDDED_S3_CREDENTIALS,
      },
      logLevel: 'warn',
    }),
  };
  const scheduler = new Scheduler(deps);
  await scheduler.recover();
  const worker: Worker = createDispatchWorker(workerRedis, prefix, (p) => scheduler.onDispatch(p.jobId));
  scheduler.start();

  const api: Stack['api'] = async (token, method, url, body, headers = {}) => {
    const res = await fetch(`${apiUrl}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  const addUser: Stack['addUser'] = async (u) => {
    const { user, membership } = await ensureUserWithQuota(db, {
      email: u.email,
      name: u.email.split('@')[0] ?? u.email,
      ...(u.role ? { role: u.role } : {}),
      group: 'cs-e2e',
      grantSeconds: u.grantSeconds,
      periodStart: new Date('2026-01-01'),
      periodEnd: new Date('2027-12-31'),
    });
    if (u.password) await setPassword(db, user.id, u.password);
    const token = await createUserToken(db, user.id, 'e2e');
    return { userId: user.id, token: token.secret, membershipId: membership.id, groupId: membership.groupId };
  };

  return {
    apiUrl,
    db,
    s3,
    scheduler,
    logDir,
    api,
    async addStudent(email, grantSeconds) {
      const { userId, token, membershipId } = await addUser({ email, grantSeconds });
      return { userId, token, membershipId };
    },
    addUser,
    async waitForStatus(token, jobId, statuses, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last: Record<string, unknown> = {};
      while (Date.now() < deadline) {
        const res = await api<Record<string, unknown>>(token, 'GET', `/v1/jobs/${jobId}`);
        last = res.body;
        if (statuses.includes(String(last.status))) return last;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(
        `job ${jobId} did not reach ${statuses.join('|')} in ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
      );
    },
    async close() {
      await worker.close();
      await scheduler.stop();
      await launcher.close();
      await kube?.close();
      await app.close();
      await queue.queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      redis.disconnect();
      workerRedis.disconnect();
      await db.$disconnect();
      await s3.close();
      rmSync(logDir, { recursive: true, force: true });
      await tdb.drop();
    },
  };
}
