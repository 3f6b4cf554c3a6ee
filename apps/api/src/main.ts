import path from 'node:path';
import { loadConfig } from '@gpulab/config';
import { createDb } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
import { allowBrowserUploads, createS3Client, type EmbeddedS3, ensureBucket, startEmbeddedS3 } from '@gpulab/storage';
import { buildApp } from './app';

/** Composition root of the API: config once, then every dependency, then the server. */
async function main() {
  const config = loadConfig(process.env);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const log = createLogger({ name: 'api', level: config.logLevel });

  let embedded: EmbeddedS3 | null = null;
  if (config.s3.embedded) {
    embedded = await startEmbeddedS3({
      directory: path.resolve(config.dataDir, 's3'),
      port: config.env.GPULAB_S3_EMBEDDED_PORT,
    });
    log.info({ endpoint: embedded.endpoint }, 'embedded S3 (s3rver) started');
  }
  const s3 = createS3Client({
    endpoint: config.s3.endpoint,
    region: config.s3.region,
    accessKeyId: config.s3.accessKeyId,
    secretAccessKey: config.s3.secretAccessKey,
    forcePathStyle: config.s3.forcePathStyle,
  });
  await ensureBucket(s3, config.s3.bucket);
  // the dashboard uploads datasets straight to S3: let the embedded S3 accept the API's own origin
  if (config.s3.embedded) await allowBrowserUploads(s3, config.s3.bucket, [new URL(config.api.publicUrl).origin]);

  const db = createDb(config.databaseUrl);
  const redis = createRedis(config.redis.url);
  const queue = new DispatchQueue(redis, config.redis.prefix);
  const app = buildApp(
    {
      db,
      redis,
      queue,
      s3,
      bucket: config.s3.bucket,
      clock: () => new Date(),
      maxAttempts: config.scheduler.maxAttempts,
      logs: new LogBus(redis, config.redis.prefix),
      webhooks: config.webhooks,
      sessions: {
        ttlMs: Math.round(config.env.GPULAB_SESSION_TTL_HOURS * 3600_000),
        secureCookies: config.env.GPULAB_SECURE_COOKIES,
      },
      ...(config.env.GPULAB_RATE_LIMIT_PER_MINUTE > 0
        ? { rateLimit: { perMinute: config.env.GPULAB_RATE_LIMIT_PER_MINUTE, prefix: config.redis.prefix } }
        : {}),
      policy: {
        halfLifeSeconds: config.scheduler.halfLifeSeconds,
        defaultMaxRunningGpusPerUser: config.scheduler.maxRunningGpusPerUser,
      },
    },
    log,
  );
  await app.listen({ host: config.api.host, port: config.api.port });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: no new requests, finishing in-flight ones');
    await app.close();
    await queue.close();
    redis.disconnect();
    await db.$disconnect();
    s3.destroy();
    await embedded?.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
