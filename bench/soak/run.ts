/**
 * Soak: the scheduler and the API under a steady load for `--minutes`, watching this process for leaks.
 *
 *   npm run soak -- [--minutes 10] [--launcher kubernetes|local] [--queued 1000] [--running 50] [--rate 50] [--seed 7]
 *   (= node --expose-gc --import tsx bench/soak/run.ts …)
 *
 * In this process: the API (buildApp on a loopback port), the scheduler (its loop, the BullMQ dispatch worker, the
 * live log bus) and its launcher, on a fresh migrated Postgres database, a Redis prefix of its own and an s3rver.
 *
 * - `--launcher kubernetes` (the default): the real KubernetesLauncher, built by the scheduler's own composition
 *   (apps/scheduler/src/compose.ts, from the same environment variables main.ts reads: list + watch of the trainer
 *   pods, a log follower per running pod, per-attempt Secrets, finished pods kept 30 s), against the test Kubernetes
 *   API server in a child process of its own (bench/soak/kube-server.ts: `--running` GPUs on nodes of 10), whose
 *   simulated kubelet runs every pod's container as a process. Flavor capacity comes from the nodes (syncFlavors).
 * - `--launcher local`: a LocalLauncher with `--running` slots; the trainers are children of this process.
 *
 * Each attempt runs the fake trainer (apps/scheduler/test/fixtures/fake-trainer.mjs: sleeps a seeded 30-90 s, prints
 * a line every 5 s, exits 0), so jobs finish and new ones launch all the time; the queue is topped up through
 * POST /v1/jobs to `--queued` waiting jobs at every sample. API traffic comes from a child process
 * (bench/soak/load.ts: autocannon, GET /v1/jobs and GET /v1/jobs/:id alternately, `--rate` requests/s).
 *
 * Every 10 s (after a forced GC when --expose-gc is on) it samples RSS, heap used, external memory and active handles
 * (process.getActiveResourcesInfo) and prints a line on stderr. The last line on stdout is one JSON object: start, end,
 * max and post-warm-up median figures, the heap trend, job and API counts, and the verdict: memory and handles are
 * flat when the end values are within 20% of the post-warm-up medians (handles: plus 10). Results: docs/reliability.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { buildApp } from '@gpulab/api/src/app';
import { loadConfig } from '@gpulab/config';
import { createDb, createUserToken, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createDispatchWorker, createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
import { buildLauncher, syncFlavors } from '@gpulab/scheduler/src/compose';
import type { Launcher } from '@gpulab/scheduler/src/launchers/launcher';
import { LocalLauncher } from '@gpulab/scheduler/src/launchers/local';
import { Scheduler } from '@gpulab/scheduler/src/scheduler';
import { createTestDatabase, REPO_ROOT, startTestS3, TEST_REDIS_URL, testRedisPrefix } from '@gpulab/testing';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    launcher: { type: 'string', default: 'kubernetes' },
    queued: { type: 'string', default: '1000' },
    running: { type: 'string', default: '50' },
    rate: { type: 'string', default: '50' },
    users: { type: 'string', default: '25' },
    seed: { type: 'string', default: '7' },
    'sample-seconds': { type: 'string', default: '10' },
    'warmup-minutes': { type: 'string' },
  },
});
const MINUTES = Number(args.minutes);
const LAUNCHER = args.launcher === 'local' ? 'local' : 'kubernetes';
if (args.launcher !== LAUNCHER) throw new Error(`--launcher must be kubernetes or local, not ${args.launcher}`);
const QUEUED = Number(args.queued);
const RUNNING = Number(args.running);
const RATE = Number(args.rate);
const USERS = Number(args.users);
const SAMPLE_MS = Number(args['sample-seconds']) * 1000;
const WARMUP_MS = (args['warmup-minutes'] ? Number(args['warmup-minutes']) : Math.min(2, MINUTES / 3)) * 60_000;

interface Sample {
  t_s: number;
  rss_mb: number;
  heap_mb: number;
  external_mb: number;
  handles: number;
  by_type: Record<string, number>;
  /** Attempts the launcher holds: child processes (local); pods in its cache, finished ones awaiting deletion too. */
  launcher_attempts: number;
  queued: number;
  running: number;
  finished: number;
  loop_delay_p99_ms: number;
}

const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : Number.NaN;
};
/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
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

async function main() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const rand = prng(Number(args.seed));
  const log = createLogger({ name: 'soak', level: process.env.GPULAB_LOG_LEVEL ?? 'silent' });
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url);
  const s3 = await startTestS3();
  const prefix = testRedisPrefix('soak');
  const redis = createRedis(TEST_REDIS_URL);
  const workerRedis = createRedis(TEST_REDIS_URL);
  const queue = new DispatchQueue(redis, prefix);
  const logs = new LogBus(redis, prefix);
  const clock = () => new Date();
  const policy = { halfLifeSeconds: 7 * 24 * 3600, defaultMaxRunningGpusPerUser: RUNNING };
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 1_000_000, capacity: RUNNING });

  const app = buildApp(
    { db, redis, queue, s3: s3.client, bucket: s3.bucket, clock, maxAttempts: 3, policy, logs },
    log,
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const apiUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

  const logDir = path.join(os.tmpdir(), `gpulab-soak-${process.pid}`);
  const trainer = [process.execPath, path.join(REPO_ROOT, 'apps/scheduler/test/fixtures/fake-trainer.mjs')];
  let kubeServer: ChildProcess | null = null;
  let shuttingDown = false;
  let kubeServerOut = '';
  let launcher: Launcher;
  if (LAUNCHER === 'kubernetes') {
    const kubeDir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-soak-kube-'));
    const kubeconfig = path.join(kubeDir, 'kubeconfig');
    const namespace = 'gpulab-soak';
    const image = 'gpulab/trainer:soak';
    kubeServer = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(REPO_ROOT, 'bench/soak/kube-server.ts'),
        JSON.stringify({
          kubeconfig,
          namespace,
          image,
          command: trainer,
          nodes: Math.ceil(RUNNING / 10),
          gpusPerNode: Math.min(10, RUNNING),
        }),
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const ks = kubeServer;
    await new Promise<void>((resolve, reject) => {
      ks.stdout?.on('data', (c: Buffer) => {
        kubeServerOut += c.toString();
        if (kubeServerOut.includes('"url"')) resolve();
      });
      ks.once('exit', (code) => reject(new Error(`the test Kubernetes server exited (${code})`)));
    });
    ks.once('exit', (code, signal) => {
      if (!shuttingDown) console.error(`soak: the test Kubernetes server exited during the run (${code ?? signal})`);
    });
    // the scheduler's own composition, from the variables main.ts reads
    const config = loadConfig({
      GPULAB_LAUNCHER: 'kubernetes',
      GPULAB_KUBECONFIG: kubeconfig,
      GPULAB_KUBE_NAMESPACE: namespace,
      GPULAB_TRAINER_IMAGE: image,
      GPULAB_KUBE_GPU_TOLERATIONS: '',
      GPULAB_STOP_GRACE_MS: '5000',
      GPULAB_LOG_LEVEL: 'silent',
    });
    launcher = buildLauncher(config, { log, clock, baseEnv: {} });
    await syncFlavors(db, launcher);
    rmSync(kubeDir, { recursive: true, force: true }); // read once, when the launcher was built
  } else {
    launcher = new LocalLauncher({
      slots: RUNNING,
      flavor: 'local',
      command: trainer,
      cwd: REPO_ROOT,
      logDir,
      baseEnv: { PATH: process.env.PATH },
      log,
      clock,
    });
  }
  const scheduler = new Scheduler({
    db,
    launcher,
    queue,
    clock,
    log,
    logs,
    trainerEnv: {},
    stopGraceMs: 5000,
    intervalMs: 2000,
    policy,
    reservationGraceMs: 15 * 60_000,
  });

  const users: { token: string }[] = [];
  for (let i = 0; i < USERS; i++) {
    const { user } = await ensureUserWithQuota(db, {
      email: `soak${i}@uni.edu`,
      name: `Soak ${i}`,
      group: 'soak',
      grantSeconds: 10_000 * 3600,
      periodStart: new Date('2020-01-01'),
      periodEnd: new Date('2100-01-01'),
    });
    users.push({ token: (await createUserToken(db, user.id, 'soak')).secret });
  }
  let submitted = 0;
  let submitFailures = 0;
  const submit = async () => {
    const ms = 30_000 + Math.floor(rand() * 60_000);
    const u = users[submitted % users.length]!;
    const res = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { authorization: `Bearer ${u.token}` },
      payload: {
        name: `fake a1=sleep:${ms},exit:0,every:5000`,
        dataset: { uri: `s3://${s3.bucket}/datasets/soak` },
        resources: { maxHours: 0.05 },
      },
    });
    if (res.statusCode === 201) submitted++;
    else submitFailures++;
    return res;
  };
  const topUp = async () => {
    const queued = await db.job.count({ where: { status: 'QUEUED' } });
    for (let i = queued; i < QUEUED; i++) await submit();
  };

  const t0 = Date.now();
  console.error(`soak: submitting ${QUEUED + RUNNING} jobs for ${USERS} users…`);
  for (let i = 0; i < QUEUED + RUNNING; i++) await submit();
  await scheduler.recover();
  const worker = createDispatchWorker(workerRedis, prefix, (p) => scheduler.onDispatch(p.jobId));
  scheduler.start();

  // API traffic for the whole run, from another process
  const ids = (await db.job.findMany({ select: { id: true }, take: 200 })).map((j) => j.id);
  const firstUserJobs = (
    await app.inject({
      method: 'GET',
      url: '/v1/jobs?limit=50',
      headers: { authorization: `Bearer ${users[0]!.token}` },
    })
  ).json().items as { id: string }[];
  const mine = firstUserJobs.map((j) => j.id);
  const load: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(REPO_ROOT, 'bench/soak/load.ts'),
      JSON.stringify({
        url: apiUrl,
        token: users[0]!.token,
        ids: mine.length ? mine : ids,
        rate: RATE,
        connections: 8,
        seconds: Math.round(MINUTES * 60),
      }),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let loadOut = '';
  load.stdout?.on('data', (c: Buffer) => {
    loadOut += c.toString();
  });
  const loadDone = new Promise<void>((r) => load.on('exit', () => r()));

  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  const samples: Sample[] = [];
  const sample = async (): Promise<Sample> => {
    global.gc?.();
    const m = process.memoryUsage();
    const types = process.getActiveResourcesInfo();
    const byType: Record<string, number> = {};
    for (const t of types) byType[t] = (byType[t] ?? 0) + 1;
    const counts = await db.job.groupBy({ by: ['status'], _count: true });
    const n = (s: string) => counts.find((c) => c.status === s)?._count ?? 0;
    const s: Sample = {
      t_s: Math.round((Date.now() - t0) / 1000),
      rss_mb: mb(m.rss),
      heap_mb: mb(m.heapUsed),
      external_mb: mb(m.external),
      handles: types.length,
      by_type: byType,
      launcher_attempts: (await launcher.running()).length,
      queued: n('QUEUED'),
      running: n('RUNNING') + n('LAUNCHING') + n('ADMITTED'),
      finished: n('SUCCEEDED') + n('FAILED') + n('CANCELLED') + n('TIMED_OUT') + n('BUDGET_EXHAUSTED'),
      loop_delay_p99_ms: Math.round(delay.percentile(99) / 1e6),
    };
    delay.reset();
    samples.push(s);
    console.error(
      `soak t=${s.t_s}s rss=${s.rss_mb}MB heap=${s.heap_mb}MB ext=${s.external_mb}MB handles=${s.handles} ` +
        `attempts=${s.launcher_attempts} queued=${s.queued} running=${s.running} finished=${s.finished} ` +
        `loop_p99=${s.loop_delay_p99_ms}ms`,
    );
    return s;
  };

  const end = t0 + MINUTES * 60_000;
  await sample();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(SAMPLE_MS, Math.max(0, end - Date.now()))));
    await topUp();
    await sample();
  }
  await loadDone;
  const finalSample = samples.at(-1)!;

  // shut down, step by step: each is named on stderr, and one that takes over a minute is reported and left behind
  shuttingDown = true;
  const stuck: string[] = [];
  const step = async (what: string, fn: () => Promise<unknown>) => {
    console.error(`soak: shutdown: ${what}`);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => {
      timer = setTimeout(() => r('late'), 60_000);
    });
    if ((await Promise.race([fn(), late])) === 'late') {
      console.error(`soak: shutdown: ${what} did not finish within 60 s; going on`);
      stuck.push(what);
    }
    clearTimeout(timer);
  };
  await step('dispatch worker', () => worker.close());
  await step('scheduler', () => scheduler.stop());
  await step('launcher', () => launcher.close());
  const ks = kubeServer;
  if (ks)
    await step('test Kubernetes server', () =>
      ks.exitCode !== null || ks.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            ks.once('exit', () => resolve());
            ks.kill('SIGTERM');
          }),
    );
  await step('api', () => app.close());
  await step('redis', async () => {
    await queue.queue.obliterate({ force: true }).catch(() => undefined);
    const logKeys = await redis.keys(`${prefix}:logs:*`);
    if (logKeys.length) await redis.del(...logKeys);
    await queue.close();
    redis.disconnect();
    workerRedis.disconnect();
  });
  await step('database', async () => {
    await db.$disconnect();
    await s3.close();
    await tdb.drop();
  });

  const post = samples.filter((s) => s.t_s * 1000 >= WARMUP_MS);
  const pick = (s: Sample) => ({
    rss_mb: s.rss_mb,
    heap_mb: s.heap_mb,
    external_mb: s.external_mb,
    handles: s.handles,
  });
  const med = {
    rss_mb: median(post.map((s) => s.rss_mb)),
    heap_mb: median(post.map((s) => s.heap_mb)),
    external_mb: median(post.map((s) => s.external_mb)),
    handles: median(post.map((s) => s.handles)),
  };
  const flat = {
    heap: finalSample.heap_mb <= med.heap_mb * 1.2,
    rss: finalSample.rss_mb <= med.rss_mb * 1.2,
    handles: finalSample.handles <= med.handles * 1.2 + 10,
  };
  const api = loadOut.trim() ? JSON.parse(loadOut.trim().split('\n').at(-1)!) : null;
  const result = {
    bench: 'soak',
    launcher: LAUNCHER,
    minutes: MINUTES,
    queued_target: QUEUED,
    running_target: RUNNING,
    api_rate_target: RATE,
    gc: typeof global.gc === 'function',
    samples: samples.length,
    warmup_s: WARMUP_MS / 1000,
    start: pick(samples[0]!),
    end: pick(finalSample),
    max: {
      rss_mb: Math.max(...samples.map((s) => s.rss_mb)),
      heap_mb: Math.max(...samples.map((s) => s.heap_mb)),
      external_mb: Math.max(...samples.map((s) => s.external_mb)),
      handles: Math.max(...samples.map((s) => s.handles)),
      loop_delay_p99_ms: Math.max(...samples.map((s) => s.loop_delay_p99_ms)),
    },
    post_warmup_median: med,
    heap_slope_mb_per_min:
      Math.round(
        slope(
          post.map((s) => s.t_s / 60),
          post.map((s) => s.heap_mb),
        ) * 100,
      ) / 100,
    rss_slope_mb_per_min:
      Math.round(
        slope(
          post.map((s) => s.t_s / 60),
          post.map((s) => s.rss_mb),
        ) * 100,
      ) / 100,
    handles_end_by_type: finalSample.by_type,
    jobs: {
      submitted,
      submit_failures: submitFailures,
      finished: finalSample.finished,
      running_end: finalSample.running,
      queued_end: finalSample.queued,
      min_running_post_warmup: Math.min(...post.map((s) => s.running)),
    },
    api,
    shutdown_stuck: stuck,
    kube_server: kubeServerOut.trim() ? JSON.parse(kubeServerOut.trim().split('\n').at(-1)!) : null,
    verdict: { ...flat, flat: flat.heap && flat.rss && flat.handles },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.verdict.flat ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
