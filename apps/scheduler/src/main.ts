import path from 'node:path';
import { loadConfig } from '@gpulab/config';
import { createDb } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createDispatchWorker, createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
import { createS3Client } from '@gpulab/storage';
import type { SchedulerDeps } from './deps';
import { LocalLauncher } from './launchers/local';
import { acquireLeadership } from './leader';
import { Scheduler } from './scheduler';
import { trainerEnv } from './trainer-env';
import { WebhookSender } from './webhooks';

/** Local-mode price of the `local` flavor when the price table has none (micro-units per GPU-hour). */
const DEFAULT_LOCAL_RATE_MICROS = 1_000_000n;

/** Composition root of the scheduler. */
async function main() {
  const config = loadConfig(process.env);
  const log = createLogger({ name: 'scheduler', level: config.logLevel });
  if (config.launcher !== 'local') throw new Error(`launcher "${config.launcher}" is not available in this build`);
  const db = createDb(config.databaseUrl);
  const redis = createRedis(config.redis.url);
  const queue = new DispatchQueue(redis, config.redis.prefix);
  const clock = () => new Date();

  const leadership = await acquireLeadership(config.databaseUrl, {
    retryMs: 2000,
    onWaiting: () => log.info('another scheduler is the leader; standing by'),
    onLost: (e) => {
      log.fatal({ err: e }, 'lost the leader lock; exiting');
      process.exit(1);
    },
  });
  log.info('leader lock acquired');

  const launcher = new LocalLauncher({
    slots: config.local.slots,
    flavor: config.local.flavor,
    command: config.local.trainerCommand,
    cwd: config.local.trainerCwd,
    logDir: path.resolve(config.dataDir, 'logs'),
    baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_OPTIONS: process.env.NODE_OPTIONS },
    log,
    clock,
  });
  await db.flavor.upsert({
    where: { name: config.local.flavor },
    create: { name: config.local.flavor, rateMicros: DEFAULT_LOCAL_RATE_MICROS, capacity: config.local.slots },
    update: { capacity: config.local.slots },
  });

  const deps: SchedulerDeps = {
    db,
    launcher,
    queue,
    clock,
    log,
    stopGraceMs: config.scheduler.stopGraceMs,
    intervalMs: config.scheduler.intervalMs,
    policy: {
      halfLifeSeconds: config.scheduler.halfLifeSeconds,
      defaultMaxRunningGpusPerUser: config.scheduler.maxRunningGpusPerUser,
    },
    reservationGraceMs: config.scheduler.reservationGraceMs,
    logs: new LogBus(redis, config.redis.prefix),
    archive: {
      s3: createS3Client({
        endpoint: config.s3.endpoint,
        region: config.s3.region,
        accessKeyId: config.s3.accessKeyId,
        secretAccessKey: config.s3.secretAccessKey,
        forcePathStyle: config.s3.forcePathStyle,
      }),
      bucket: config.s3.bucket,
    },
    trainerEnv: trainerEnv({ apiUrl: config.api.publicUrl, s3: config.s3, logLevel: config.logLevel }),
  };
  const scheduler = new Scheduler(deps);
  await scheduler.recover();
  const worker = createDispatchWorker(createRedis(config.redis.url), config.redis.prefix, (p) =>
    scheduler.onDispatch(p.jobId),
  );
  worker.on('error', (e) => log.warn({ err: e }, 'dispatch worker error'));
  scheduler.start();
  const webhooks = new WebhookSender({ db, log, clock, allowPrivate: config.webhooks.allowPrivate });
  webhooks.start();
  log.info({ launcher: launcher.kind, slots: config.local.slots }, 'scheduler running');

  const shutdown = async (signal: string) => {
    log.info({ signal }, 'scheduler stopping');
    await worker.close();
    await scheduler.stop();
    await webhooks.stop();
    await launcher.close();
    await leadership.release();
    await queue.close();
    redis.disconnect();
    await db.$disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
