/**
 * API benchmark: job submissions per second and latency, next to a baseline measured in the same run.
 *
 *   node --import tsx bench/api/run.ts [--connections 50] [--seconds 15] [--warmup 3] [--cpu-profile out.cpuprofile]
 *
 * Both servers run in this process on loopback against the same Postgres (a fresh database migrated from the
 * committed migrations) and are driven by autocannon with the same settings, one after the other:
 *   submit    POST /v1/jobs through the real API (buildApp): token check, body validation, the caller's membership
 *             and the flavor, the job and its first transition inserted in one statement (durable in Postgres before
 *             the response), the dispatch entry added to Redis (BullMQ), and the job view — exactly what a client
 *             gets. Rate limiting (Redis) and request logging are off, as in the baseline.
 *   baseline  a bare Fastify route doing one Postgres insert (pg Pool, no validation, no auth, no Redis).
 * Prints human-readable lines, then one JSON line; `cpu_us_per_req` is this process's CPU time per request (server
 * and load generator), steadier than rates on a shared machine. After the runs it checks that every job in Postgres
 * has its first transition and a dispatch entry. `--cpu-profile` records the submit run (open it in Chrome DevTools).
 * Results: docs/benchmarks.md.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { buildApp } from '@gpulab/api/src/app';
import { createDb, createUserToken, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import { createTestDatabase, startTestS3, TEST_POLICY, TEST_REDIS_URL, testRedisPrefix } from '@gpulab/testing';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    'cpu-profile': { type: 'string' },
  },
});
const CONNECTIONS = Number(args.connections);
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);

interface Figures {
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  non_2xx: number;
  errors: number;
  /** CPU time of this process (server and load generator together) per request: less sensitive to other load. */
  cpu_us_per_req: number;
}

async function drive(url: string, body: string, headers: Record<string, string>, seconds: number): Promise<Figures> {
  const cpu = process.cpuUsage();
  const r = await autocannon({
    url,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
    connections: CONNECTIONS,
    duration: seconds,
  });
  return {
    requests_per_s: Math.round(r.requests.average * 10) / 10,
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    requests: r.requests.total,
    non_2xx: r.non2xx,
    errors: r.errors,
    cpu_us_per_req: Math.round(((u) => u.user + u.system)(process.cpuUsage(cpu)) / Math.max(1, r.requests.total)),
  };
}

/** A CPU profile of this process (servers and load generator alike) while the submit run lasts. */
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

  const spec = JSON.stringify({ dataset: { uri: `s3://${s3.bucket}/datasets/bench` }, epochs: 3, imageSize: 32 });
  const auth = { authorization: `Bearer ${secret}` };
  const say = (s: string) => console.log(s);
  say(
    `${os.cpus().length} CPUs, node ${process.version}; ${CONNECTIONS} connections, ${SECONDS} s per run after ${WARMUP} s warm-up`,
  );

  await drive(bareUrl, spec, {}, WARMUP);
  const baseline = await drive(bareUrl, spec, {}, SECONDS);
  say(`baseline  ${baseline.requests_per_s} req/s, p50 ${baseline.p50_ms} ms, p99 ${baseline.p99_ms} ms`);
  await drive(apiUrl, spec, auth, WARMUP);
  const before = await db.job.count();
  const profiler = args['cpu-profile'] ? await startProfile() : null;
  const submit = await drive(apiUrl, spec, auth, SECONDS);
  if (profiler) writeFileSync(args['cpu-profile']!, JSON.stringify(await profiler.stop()));
  const durable = (await db.job.count()) - before;
  const enqueued = await queue.depth();
  const jobs = await db.job.count();
  const firstTransitions = await db.jobTransition.count({ where: { from: null, to: 'QUEUED' } });
  say(
    `submit    ${submit.requests_per_s} req/s, p50 ${submit.p50_ms} ms, p99 ${submit.p99_ms} ms (${durable} jobs in Postgres)`,
  );

  const ratio = Math.round((submit.requests_per_s / baseline.requests_per_s) * 1000) / 1000;
  say(`ratio of submission rate to baseline: ${ratio}`);
  console.log(
    JSON.stringify({
      bench: 'api-submit',
      date: new Date().toISOString().slice(0, 10),
      node: process.version,
      cpus: os.cpus().length,
      connections: CONNECTIONS,
      seconds: SECONDS,
      submit: { ...submit, durable_jobs: durable },
      check: { jobs_in_postgres: jobs, first_transitions: firstTransitions, dispatch_entries: enqueued },
      baseline,
      ratio_to_baseline: ratio,
      load_avg_1m: Math.round(os.loadavg()[0]! * 100) / 100,
    }),
  );

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
