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
  /** Kubernetes launcher (GPULAB_LAUNCHER=kubernetes). Kubeconfig file; unset: KUBECONFIG, ~/.kube/config or in-cluster. */
  GPULAB_KUBECONFIG: z.string().optional(),
  /** Namespace of trainer pods, their Secrets and the leader Lease. */
  GPULAB_KUBE_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .default('gpulab'),
  GPULAB_TRAINER_IMAGE: z.string().min(1).default('ghcr.io/gpulab/trainer-gpu:0.1.0'),
  GPULAB_TRAINER_IMAGE_PULL_POLICY: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  /** Overrides the trainer image's entrypoint (split on spaces); unset: the image's own. */
  GPULAB_KUBE_TRAINER_COMMAND: z.string().optional(),
  /** Node label whose value names the GPU flavor, e.g. gpulab.dev/flavor or nvidia.com/gpu.product. */
  GPULAB_KUBE_FLAVOR_LABEL: z.string().min(1).default('gpulab.dev/flavor'),
  /** Flavor → value of the flavor label when they differ: `a100=NVIDIA-A100-SXM4-80GB,t4=Tesla-T4`. */
  GPULAB_KUBE_FLAVOR_VALUES: z
    .string()
    .regex(/^([a-z0-9][a-z0-9-]{0,31}=[A-Za-z0-9._-]+)?(,[a-z0-9][a-z0-9-]{0,31}=[A-Za-z0-9._-]+)*$/)
    .default(''),
  /** Taint keys of GPU nodes the trainer tolerates (comma-separated; empty for none). */
  GPULAB_KUBE_GPU_TOLERATIONS: z.string().default('nvidia.com/gpu'),
  /** Secret with GPULAB_S3_ACCESS_KEY_ID and GPULAB_S3_SECRET_ACCESS_KEY for trainer pods; unset: per-attempt Secret. */
  GPULAB_KUBE_S3_SECRET: z.string().optional(),
  GPULAB_KUBE_TRAINER_SERVICE_ACCOUNT: z.string().optional(),
  GPULAB_KUBE_CPU_PER_GPU: z.coerce.number().positive().max(256).optional(),
  GPULAB_KUBE_MEMORY_GIB_PER_GPU: z.coerce.number().positive().max(4096).optional(),
  /** A trainer container that cannot pull its image this long ends the job (FAILED, uncharged). */
  GPULAB_KUBE_IMAGE_PULL_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(300_000),
  /** A trainer pod not scheduled onto a node this long after creation is removed and the attempt retried. */
  GPULAB_KUBE_START_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(120_000),
  /** Finished trainer pods are kept this long after their exit is recorded, then deleted. */
  GPULAB_KUBE_FINISHED_POD_TTL_MS: z.coerce.number().int().min(0).max(86_400_000).default(30_000),
  /** Subtract GPUs that other tenants' pods hold from capacity (needs cluster-wide pod list). */
  GPULAB_KUBE_SUBTRACT_FOREIGN_PODS: bool.default('true'),
  /** Leader election: a Postgres advisory lock, or a coordination.k8s.io Lease (default with Kubernetes). */
  GPULAB_LEADER_ELECTION: z.enum(['postgres', 'lease']).optional(),
  GPULAB_LEADER_LEASE_NAME: z.string().default('gpulab-scheduler'),
  GPULAB_LEADER_LEASE_SECONDS: z.coerce.number().int().min(2).max(600).default(15),
  /** This replica's identity in the Lease (the pod name in a Deployment). */
  GPULAB_POD_NAME: z.string().optional(),
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
  kube: KubeSettings;
  leader: { election: 'postgres' | 'lease'; leaseName: string; leaseSeconds: number; identity: string | null };
  scheduler: SchedulerSettings;
  webhooks: { allowPrivate: boolean };
}

export interface KubeSettings {
  kubeconfig: string | null;
  namespace: string;
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  trainerCommand: string[] | null;
  flavorLabel: string;
  flavorValues: Record<string, string>;
  gpuTaints: string[];
  s3SecretName: string | null;
  serviceAccountName: string | null;
  cpuPerGpu: number | null;
  memoryGiBPerGpu: number | null;
  imagePullTimeoutMs: number;
  startTimeoutMs: number;
  finishedPodTtlMs: number;
  subtractForeignPods: boolean;
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
    kube: {
      kubeconfig: env.GPULAB_KUBECONFIG ?? null,
      namespace: env.GPULAB_KUBE_NAMESPACE,
      image: env.GPULAB_TRAINER_IMAGE,
      imagePullPolicy: env.GPULAB_TRAINER_IMAGE_PULL_POLICY,
      trainerCommand: env.GPULAB_KUBE_TRAINER_COMMAND?.split(' ').filter(Boolean) ?? null,
      flavorLabel: env.GPULAB_KUBE_FLAVOR_LABEL,
      flavorValues: Object.fromEntries(
        env.GPULAB_KUBE_FLAVOR_VALUES.split(',')
          .filter(Boolean)
          .map((kv) => kv.split('=') as [string, string]),
      ),
      gpuTaints: env.GPULAB_KUBE_GPU_TOLERATIONS.split(',')
        .map((t) => t.trim())
        .filter(Boolean),
      s3SecretName: env.GPULAB_KUBE_S3_SECRET ?? null,
      serviceAccountName: env.GPULAB_KUBE_TRAINER_SERVICE_ACCOUNT ?? null,
      cpuPerGpu: env.GPULAB_KUBE_CPU_PER_GPU ?? null,
      memoryGiBPerGpu: env.GPULAB_KUBE_MEMORY_GIB_PER_GPU ?? null,
      imagePullTimeoutMs: env.GPULAB_KUBE_IMAGE_PULL_TIMEOUT_MS,
      startTimeoutMs: env.GPULAB_KUBE_START_TIMEOUT_MS,
      finishedPodTtlMs: env.GPULAB_KUBE_FINISHED_POD_TTL_MS,
      subtractForeignPods: env.GPULAB_KUBE_SUBTRACT_FOREIGN_PODS,
    },
    leader: {
      election: env.GPULAB_LEADER_ELECTION ?? (env.GPULAB_LAUNCHER === 'kubernetes' ? 'lease' : 'postgres'),
      leaseName: env.GPULAB_LEADER_LEASE_NAME,
      leaseSeconds: env.GPULAB_LEADER_LEASE_SECONDS,
      identity: env.GPULAB_POD_NAME ?? null,
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
