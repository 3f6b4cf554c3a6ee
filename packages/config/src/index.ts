import { z } from 'zod';

/**
 * The one environment schema. Each process parses it exactly once in its composition root (main.ts) and passes the
 * typed result down; nothing else reads process.env.
 */
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  GPULAB_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/gpulab'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  GPULAB_REDIS_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9:_-]+$/)
    .default('gpulab'),
  GPULAB_API_HOST: z.string().default('127.0.0.1'),
  GPULAB_API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** The URL trainers use to reach the API; defaults to http://API_HOST:API_PORT. */
  GPULAB_API_URL: z.string().url().optional(),
  GPULAB_S3_ENDPOINT: z.string().url().optional(),
  GPULAB_S3_REGION: z.string().default('us-east-1'),
  GPULAB_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{2,62}$/, 'must be a valid S3 bucket name')
    .default('gpulab'),
  GPULAB_S3_ACCESS_KEY_ID: z.string().optional(),
  GPULAB_S3_SECRET_ACCESS_KEY: z.string().optional(),
  GPULAB_S3_FORCE_PATH_STYLE: bool.default('true'),
  /** Embedded S3 (s3rver), started by the API, when no GPULAB_S3_ENDPOINT is given. */
  GPULAB_S3_EMBEDDED_PORT: z.coerce.number().int().min(0).max(65535).default(9100),
  GPULAB_DATA_DIR: z.string().default('.gpulab/data'),
  GPULAB_LAUNCHER: z.enum(['local', 'kubernetes']).default('local'),
  GPULAB_LOCAL_SLOTS: z.coerce.number().int().min(1).max(64).default(1),
  GPULAB_LOCAL_FLAVOR: z.string().default('local'),
  /** Command line that starts a trainer process in local mode (split on spaces). */
  GPULAB_TRAINER_COMMAND: z.string().default(`${process.execPath} --import tsx apps/trainer/src/main.ts`),
  GPULAB_TRAINER_CWD: z.string().optional(),
  GPULAB_SCHEDULER_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(2000),
  GPULAB_STOP_GRACE_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  GPULAB_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  /** Fair share: usage this many hours old counts half (Slurm's PriorityDecayHalfLife; default 7 days). */
  GPULAB_FAIR_SHARE_HALF_LIFE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 365)
    .default(168),
  /** Default cap on one user's running GPUs in a group (a group may set its own). */
  GPULAB_MAX_RUNNING_GPUS_PER_USER: z.coerce.number().int().min(1).max(10_000).default(4),
  /** A reservation no job has used this many minutes after its start is released to its owner's quota. */
  /** Requests per minute per API token or session (0: no limit). */
  GPULAB_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).max(1_000_000).default(1200),
  /** Mark session cookies Secure (set when the API is served over HTTPS). */
  GPULAB_SECURE_COOKIES: bool.default('false'),
  GPULAB_SESSION_TTL_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 90)
    .default(168),
  /** Let webhooks reach private/loopback addresses (default: only with the local launcher, i.e. on one machine). */
  GPULAB_WEBHOOK_ALLOW_PRIVATE: bool.optional(),
  GPULAB_RESERVATION_GRACE_MINUTES: z.coerce
    .number()
    .min(0)
    .max(24 * 60)
    .default(15),
});

export type Env = z.infer<typeof EnvSchema>;

export interface S3Settings {
  endpoint: string | undefined;
  embedded: boolean;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

export interface Config {
  env: Env;
  nodeEnv: Env['NODE_ENV'];
  logLevel: Env['GPULAB_LOG_LEVEL'];
  databaseUrl: string;
  redis: { url: string; prefix: string };
  api: { host: string; port: number; publicUrl: string };
  s3: S3Settings;
  dataDir: string;
  launcher: Env['GPULAB_LAUNCHER'];
  local: { slots: number; flavor: string; trainerCommand: string[]; trainerCwd: string };
  scheduler: SchedulerSettings;
  webhooks: { allowPrivate: boolean };
}

export interface SchedulerSettings {
  intervalMs: number;
  stopGraceMs: number;
  maxAttempts: number;
  halfLifeSeconds: number;
  maxRunningGpusPerUser: number;
  reservationGraceMs: number;
}

export class ConfigError extends Error {}

/** Parses the environment once; throws a ConfigError naming every bad variable. */
export function loadConfig(source: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n${lines.join('\n')}`);
  }
  const env = parsed.data;
  const embedded = !env.GPULAB_S3_ENDPOINT;
  const endpoint = env.GPULAB_S3_ENDPOINT ?? `http://127.0.0.1:${env.GPULAB_S3_EMBEDDED_PORT}`;
  return {
    env,
    nodeEnv: env.NODE_ENV,
    logLevel: env.GPULAB_LOG_LEVEL,
    databaseUrl: env.DATABASE_URL,
    redis: { url: env.REDIS_URL, prefix: env.GPULAB_REDIS_PREFIX },
    api: {
      host: env.GPULAB_API_HOST,
      port: env.GPULAB_API_PORT,
      publicUrl: env.GPULAB_API_URL ?? `http://${env.GPULAB_API_HOST}:${env.GPULAB_API_PORT}`,
    },
    s3: {
      endpoint,
      embedded,
      region: env.GPULAB_S3_REGION,
      bucket: env.GPULAB_S3_BUCKET,
      accessKeyId: env.GPULAB_S3_ACCESS_KEY_ID ?? (embedded ? 'S3RVER' : ''),
      secretAccessKey: env.GPULAB_S3_SECRET_ACCESS_KEY ?? (embedded ? 'S3RVER' : ''),
      forcePathStyle: env.GPULAB_S3_FORCE_PATH_STYLE,
    },
    dataDir: env.GPULAB_DATA_DIR,
    launcher: env.GPULAB_LAUNCHER,
    local: {
      slots: env.GPULAB_LOCAL_SLOTS,
      flavor: env.GPULAB_LOCAL_FLAVOR,
      trainerCommand: env.GPULAB_TRAINER_COMMAND.split(' ').filter(Boolean),
      trainerCwd: env.GPULAB_TRAINER_CWD ?? process.cwd(),
    },
    scheduler: {
      intervalMs: env.GPULAB_SCHEDULER_INTERVAL_MS,
      stopGraceMs: env.GPULAB_STOP_GRACE_MS,
      maxAttempts: env.GPULAB_MAX_ATTEMPTS,
      halfLifeSeconds: Math.round(env.GPULAB_FAIR_SHARE_HALF_LIFE_HOURS * 3600),
      maxRunningGpusPerUser: env.GPULAB_MAX_RUNNING_GPUS_PER_USER,
      reservationGraceMs: Math.round(env.GPULAB_RESERVATION_GRACE_MINUTES * 60_000),
    },
    webhooks: { allowPrivate: env.GPULAB_WEBHOOK_ALLOW_PRIVATE ?? env.GPULAB_LAUNCHER === 'local' },
  };
}
