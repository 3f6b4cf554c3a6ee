/**
 * API benchmark: job submissions per second and latency, next to a baseline measured in the same run.
 *
 *   node --import tsx bench/api/run.ts [--connections 50] [--seconds 15] [--rounds 5] [--warmup 3]
 *                                      [--cpu-profile out.cpuprofile]
 *
 * Both servers run in this process on loopback against the same Postgres (a fresh database migrated from the
 * committed migrations). The load comes from autocannon in a child process (bench/api/load.ts), as a real client's
 * would: the load generator does not compete for the servers' event loop. Same settings for both sides:
 *   submit    POST /v1/jobs through the real API (buildApp): token check, body validation, the caller's membership
 *             and the flavor, the job and its first transition inserted in one statement (durable in Postgres before
 *             the response), the dispatch entry added to Redis (BullMQ), and the job view — exactly what a client
 *             gets. Rate limiting (Redis) and request logging are off, as in the baseline.
 *   baseline  a bare Fastify route doing one Postgres insert (pg Pool, no validation, no auth, no Redis).
 * After a warm-up of each, the two alternate in `--rounds` short rounds (ABBA order) of `--seconds / --rounds` each,
 * so that other work on a shared machine, which comes and goes, falls on both sides alike rather than on whichever
 * happened to run at the time; `round_ratios` shows the spread.
 *
 * Prints a line per round, then one JSON line. Per side: the rate (all requests over all rounds' seconds), p50 (median
 * of the rounds'), p99 (the worst round's), `cpu_us_per_req` — the server process's CPU time per request (this
 * process: the servers alone) — and `client_cpu_us_per_req`, the load generator's; CPU per request is steadier than
 * rates on a shared machine. `machine_busy` is how busy all CPUs were (Postgres, Redis, the load generator and anyone
 * else's work included); `load_avg_1m_start` and `load_avg_1m` the load average before and after. After the runs it
 * checks that every job in Postgres has its first transition and a dispatch entry (`check.ok`; exit status 1 if not).
 * `--cpu-profile` records the server process during the first submit round (open it in Chrome DevTools; `--rounds 1`
 * for a longer one). Results: docs/benchmarks.md.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildApp } from '@gpulab/api/src/app';
import { createDb, createUserToken, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  testRedisPrefix,
} from '@gpulab/testing';
import Fastify from 'fastify';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    'cpu-profile': { type: 'string' },
  },
});
const CONNECTIONS = Number(args.connections);
const SECONDS = Number(args.seconds);
const ROUNDS = Math.max(1, Number(args.rounds));
const WARMUP = Number(args.warmup);

type Side = 'baseline' | 'submit';

interface Run {
  side: Side;
  url: string;
  body: string;
  headers: Record<string, string>;
  seconds: number;
  /** Warm-up: run, not counted. */
  warmup: boolean;
}

/** What the load generator reports for one run (bench/api/load.ts). */
interface LoadFigures {
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  seconds: number;
  non_2xx: number;
  errors: number;
  timeouts: number;
  client_cpu_us_per_req: number;
}

interface Measured {
  run: Run;
  load: LoadFigures;
  /** CPU time of this process (the servers) during the run, in µs. */
  serverCpuUs: number;
  /** Busy and total CPU ticks of the whole machine during the run. */
  busyTicks: number;
  totalTicks: number;
}

/** Busy and total CPU time of the whole machine so far (Linux /proc/stat), or null elsewhere. */
function machineTicks(): { busy: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - f[3]! - f[4]!, total };
  } catch {
    return null;
  }
}

/**
 * Runs `runs` in order from one load-generator child process (bench/api/load.ts). Before each run the child waits for
 * a go, so this process's CPU time and the machine's counters are read exactly around it; `hooks` run there too.
 */
async function drive(
  runs: Run[],
  hooks: { beforeRun?: (i: number) => Promise<void>; afterRun?: (i: number, m: Measured) => Promise<void> } = {},
): Promise<Measured[]> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(REPO_ROOT, 'bench/api/load.ts'),
      JSON.stringify({
        connections: CONNECTIONS,
        runs: runs.map(({ url, body, headers, seconds }) => ({ url, body, headers, seconds })),
      }),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const out: Measured[] = [];
  let at: { cpu: NodeJS.CpuUsage; ticks: ReturnType<typeof machineTicks> } | null = null;
  let failed: unknown = null;
  // Messages are handled one after another: a hook that takes a while (writing a profile) delays the next go.
  let chain = Promise.resolve();
  child.on('message', (m: { ready?: number; result?: number; figures?: LoadFigures }) => {
    chain = chain
      .then(async () => {
        if (m.ready !== undefined) {
          await hooks.beforeRun?.(m.ready);
          at = { cpu: process.cpuUsage(), ticks: machineTicks() };
          child.send('go');
        } else if (m.result !== undefined && m.figures && at) {
          const cpu = process.cpuUsage(at.cpu);
          const ticks = machineTicks();
          const measured: Measured = {
            run: runs[m.result]!,
            load: m.figures,
            serverCpuUs: cpu.user + cpu.system,
            busyTicks: ticks && at.ticks ? ticks.busy - at.ticks.busy : 0,
            totalTicks: ticks && at.ticks ? ticks.total - at.ticks.total : 0,
          };
          out.push(measured);
          await hooks.afterRun?.(m.result, measured);
        }
      })
      .catch((e: unknown) => {
        failed = e;
        child.kill();
      });
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  await chain;
  if (failed) throw failed;
  if (code !== 0 || out.length !== runs.length) throw new Error(`load generator failed (exit ${code})`);
  return out;
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)] ?? 0;

/**
 * One side's figures over its rounds: rate = all requests / all seconds; p50 the median of the rounds' p50s; p99 the
 * worst round's p99 (autocannon reports percentiles, not histograms, so they cannot be merged exactly — the maximum
 * errs on the side of a higher p99); CPU per request over all rounds; how busy the machine was over all rounds.
 */
function aggregate(ms: Measured[]) {
  const sum = (f: (m: Measured) => number) => ms.reduce((a, m) => a + f(m), 0);
  const requests = sum((m) => m.load.requests);
  const ticks = sum((m) => m.totalTicks);
  return {
    requests_per_s: round1(
      requests /
        Math.max(
          1e-9,
          sum((m) => m.load.seconds),
        ),
    ),
    p50_ms: median(ms.map((m) => m.load.p50_ms)),
    p99_ms: Math.max(...ms.map((m) => m.load.p99_ms)),
    requests,
    non_2xx: sum((m) => m.load.non_2xx),
    errors: sum((m) => m.load.errors),
    timeouts: sum((m) => m.load.timeouts),
    /** CPU time of the server process (this one) per request: less sensitive to other load than the rate. */
    cpu_us_per_req: Math.round(sum((m) => m.serverCpuUs) / Math.max(1, requests)),
    /** CPU time of the load generator (autocannon, its own process) per request. */
    client_cpu_us_per_req: Math.round(
      sum((m) => m.load.client_cpu_us_per_req * m.load.requests) / Math.max(1, requests),
    ),
    /** How busy the whole machine's CPUs were (0–1): Postgres, Redis, the load generator, anyone else's work. */
    machine_busy: ticks ? Math.round((sum((m) => m.busyTicks) / ticks) * 100) / 100 : null,
  };
}

/** A CPU profile of this process (the servers) while a submit round lasts. */
async function startProfile() {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    stop: async () => {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      return profile;
    },
  };
}

async function main() {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url);
  const s3 = await startTestS3();
  const redis = createRedis(TEST_REDIS_URL);
  const queue = new DispatchQueue(redis, testRedisPrefix('bench-api'));
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 });
  const { user } = await ensureUserWithQuota(db, {
    email: 'bench@uni.edu',
    name: 'Bench',
    group: 'bench',
    grantSeconds: 1_000_000,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-12-31'),
  });
  const { secret } = await createUserToken(db, user.id, 'bench');

  const app = buildApp(
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
    createLogger({ name: 'bench', level: 'silent' }),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v1/jobs`;

  const pool = new pg.Pool({ connectionString: tdb.url, max: 10 });
  await pool.query(
    'CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, body jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())',
  );
  const bare = Fastify();
  bare.post('/insert', async (req) => {
    const r = await pool.query('INSERT INTO bench_baseline (body) VALUES ($1) RETURNING id', [req.body]);
    return { id: r.rows[0].id };
  });
  await bare.listen({ host: '127.0.0.1', port: 0 });
  const bareUrl = `http://127.0.0.1:${(bare.server.address() as { port: number }).port}/insert`;

  const loadAtStart = Math.round(os.loadavg()[0]! * 100) / 100;
  const spec = JSON.stringify({ dataset: { uri: `s3://${s3.bucket}/datasets/bench` }, epochs: 3, imageSize: 32 });
  const auth = { authorization: `Bearer ${secret}` };
  const say = (s: string) => console.log(s);
  const slice = Math.max(1, Math.round(SECONDS / ROUNDS));
  say(
    `${os.cpus().length} CPUs, node ${process.version}; ${CONNECTIONS} connections; ${ROUNDS} rounds of ${slice} s ` +
      `per side, alternating, after ${WARMUP} s warm-up each; load average ${loadAtStart}`,
  );

  const run = (side: Side, seconds: number, warmup = false): Run =>
    side === 'submit'
      ? { side, url: apiUrl, body: spec, headers: auth, seconds, warmup }
      : { side, url: bareUrl, body: spec, headers: {}, seconds, warmup };
  // Baseline and submit alternate in short rounds (ABBA order), so other work on a shared machine falls on both.
  const runs = [run('baseline', WARMUP, true), run('submit', WARMUP, true)];
  for (let r = 0; r < ROUNDS; r++)
    runs.push(
      ...(r % 2 === 0
        ? [run('baseline', slice), run('submit', slice)]
        : [run('submit', slice), run('baseline', slice)]),
    );
  const firstSubmit = runs.findIndex((r) => r.side === 'submit' && !r.warmup);
  let before = 0;
  let profiler: Awaited<ReturnType<typeof startProfile>> | null = null;
  const measured = await drive(runs, {
    beforeRun: async (i) => {
      if (i === 2) before = await db.job.count(); // after the warm-ups
      if (i === firstSubmit && args['cpu-profile']) profiler = await startProfile();
    },
    afterRun: async (i, m) => {
      if (!m.run.warmup)
        say(
          `  ${m.run.side.padEnd(8)} ${round1(m.load.requests / m.load.seconds)} req/s, p50 ${m.load.p50_ms} ms, ` +
            `p99 ${m.load.p99_ms} ms, machine ${Math.round((m.busyTicks / Math.max(1, m.totalTicks)) * 100)}% busy`,
        );
      if (i === firstSubmit && profiler) writeFileSync(args['cpu-profile']!, JSON.stringify(await profiler.stop()));
    },
  });
  const counted = measured.filter((m) => !m.run.warmup);
  const submit = aggregate(counted.filter((m) => m.run.side === 'submit'));
  const baseline = aggregate(counted.filter((m) => m.run.side === 'baseline'));
  const roundRatios = Array.from({ length: ROUNDS }, (_, r) => {
    const pair = counted.slice(2 * r, 2 * r + 2);
    const rate = (side: Side) => {
      const m = pair.find((x) => x.run.side === side)!;
      return m.load.requests / m.load.seconds;
    };
    return Math.round((rate('submit') / rate('baseline')) * 100) / 100;
  });

  const durable = (await db.job.count()) - before;
  const enqueued = await queue.depth();
  const jobs = await db.job.count();
  const firstTransitions = await db.jobTransition.count({ where: { from: null, to: 'QUEUED' } });
  const [{ n: withoutFirst } = { n: -1 }] = await db.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM jobs j
     WHERE NOT EXISTS (SELECT 1 FROM job_transitions t WHERE t.job_id = j.id AND t."from" IS NULL AND t."to" = 'QUEUED')`;
  const durableOk = withoutFirst === 0 && firstTransitions === jobs && enqueued === jobs;
  say(`baseline  ${baseline.requests_per_s} req/s, p50 ${baseline.p50_ms} ms, p99 ${baseline.p99_ms} ms`);
  say(
    `submit    ${submit.requests_per_s} req/s, p50 ${submit.p50_ms} ms, p99 ${submit.p99_ms} ms (${durable} jobs in Postgres)`,
  );
  const ratio = Math.round((submit.requests_per_s / baseline.requests_per_s) * 1000) / 1000;
  say(`ratio of submission rate to baseline: ${ratio} (rounds: ${roundRatios.join(', ')})`);
  console.log(
    JSON.stringify({
      bench: 'api-submit',
      date: new Date().toISOString().slice(0, 10),
      node: process.version,
      cpus: os.cpus().length,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      seconds_per_side: slice * ROUNDS,
      submit: { ...submit, durable_jobs: durable },
      check: {
        jobs_in_postgres: jobs,
        first_transitions: firstTransitions,
        jobs_without_first_transition: withoutFirst,
        dispatch_entries: enqueued,
        ok: durableOk,
      },
      baseline,
      ratio_to_baseline: ratio,
      round_ratios: roundRatios,
      load_avg_1m_start: loadAtStart,
      load_avg_1m: Math.round(os.loadavg()[0]! * 100) / 100,
    }),
  );

  if (!durableOk) process.exitCode = 1;
  await bare.close();
  await pool.end();
  await app.close();
  await queue.queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  redis.disconnect();
  await s3.close();
  await db.$disconnect();
  await tdb.drop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
