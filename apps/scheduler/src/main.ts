import { loadConfig } from '@gpulab/config';
import { createDb } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createDispatchWorker, createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
import { createS3Client } from '@gpulab/storage';
import { buildLauncher, electLeader, syncFlavors } from './compose';
import type { SchedulerDeps } from './deps';
import { stopOrphans } from './reconcile';
import { Scheduler } from './scheduler';
import { trainerEnv } from './trainer-env';
import { WebhookSender } from './webhooks';

/** Composition root of the scheduler. */
async function main() {
  const config = loadConfig(process.env);
  const log = createLogger({ name: 'scheduler', level: config.logLevel });
  const db = createDb(config.databaseUrl);
  const redis = createRedis(config.redis.url);
  const queue = new DispatchQueue(redis, config.redis.prefix);
  const clock = () => new Date();

  const leadership = await electLeader(config, {
    log,
    onLost: (e) => {
      log.fatal({ err: e }, 'lost leadership; exiting');
      process.exit(1);
    },
  });

  const launcher = buildLauncher(config, {
    log,
    clock,
    baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_OPTIONS: process.env.NODE_OPTIONS },
  });
  await syncFlavors(db, launcher);

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
  const reconcile = () => stopOrphans(deps).catch((e: unknown) => log.warn({ err: e }, 'orphan reconciliation failed'));
  await reconcile();
  const reconciler = setInterval(() => void reconcile(), 60_000);
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
    clearInterval(reconciler);
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
