/**
 * The trainer's environment, parsed once at start-up (never read at module scope).
 *
 *   GPULAB_JOB_ID                 job id (used in S3 keys and the events URL)
 *   GPULAB_ATTEMPT                attempt number (integer ≥ 1)
 *   GPULAB_JOB_SPEC               the job spec as JSON (validated with JobSpecSchema)
 *   GPULAB_API_URL, GPULAB_JOB_TOKEN   optional: where to POST progress events, and the job-scoped token
 *   GPULAB_S3_ENDPOINT            optional (S3-compatible stores)
 *   GPULAB_S3_REGION              default us-east-1
 *   GPULAB_S3_BUCKET              bucket for checkpoints, models and metrics
 *   GPULAB_S3_ACCESS_KEY_ID, GPULAB_S3_SECRET_ACCESS_KEY
 *   GPULAB_S3_FORCE_PATH_STYLE    'true' | 'false' (default false)
 *   GPULAB_NATIVE_KERNELS         auto (default) | off | required: the native CPU kernels for wasm (backends/native-kernels.ts)
 *   GPULAB_LOG_LEVEL              optional: trace|debug|info|warn|error|fatal|silent (read by main.ts, see log.ts)
 */
import { type JobSpec, JobSpecSchema } from '@gpulab/core';
import { z } from 'zod';

const optional = (schema: z.ZodTypeAny) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

export const EnvSchema = z.object({
  GPULAB_JOB_ID: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/, 'must be 1-128 of [A-Za-z0-9_-]'),
  GPULAB_ATTEMPT: z.coerce.number().int().min(1),
  GPULAB_JOB_SPEC: z.string().min(1),
  GPULAB_API_URL: optional(z.string().url()),
  GPULAB_JOB_TOKEN: optional(z.string().min(1)),
  GPULAB_S3_ENDPOINT: optional(z.string().url()),
  GPULAB_S3_REGION: z.preprocess((v) => (v === '' ? undefined : v), z.string().default('us-east-1')),
  GPULAB_S3_BUCKET: z.string().min(1),
  GPULAB_S3_ACCESS_KEY_ID: z.string().min(1),
  GPULAB_S3_SECRET_ACCESS_KEY: z.string().min(1),
  GPULAB_S3_FORCE_PATH_STYLE: z
    .preprocess((v) => (v === '' ? undefined : v), z.enum(['true', 'false']).default('false'))
    .transform((v) => v === 'true'),
  GPULAB_NATIVE_KERNELS: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.enum(['auto', 'off', 'required']).default('auto'),
  ),
});

export interface TrainerConfig {
  jobId: string;
  attempt: number;
  api: { url: string; token: string } | null;
  /** Native CPU kernels for the wasm backend: auto, off or required. */
  nativeKernels: 'auto' | 'off' | 'required';
  s3: {
    endpoint: string | undefined;
    region: string;
    bucket: string;
    accessKeyId: string;
    secretAccessKey: string;
    forcePathStyle: boolean;
  };
}

/** The environment is malformed: a deployment problem, not the user's. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The job spec is not valid JSON or fails JobSpecSchema: the user's problem. */
export class SpecError extends Error {
  override readonly name = 'SpecError';
}

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

export function parseConfig(env: NodeJS.ProcessEnv): { config: TrainerConfig; specJson: string } {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid trainer environment: ${describe(parsed.error)}`);
  const e = parsed.data;
  const api = e.GPULAB_API_URL && e.GPULAB_JOB_TOKEN ? { url: e.GPULAB_API_URL, token: e.GPULAB_JOB_TOKEN } : null;
  return {
    config: {
      jobId: e.GPULAB_JOB_ID,
      attempt: e.GPULAB_ATTEMPT,
      api,
      nativeKernels: e.GPULAB_NATIVE_KERNELS,
      s3: {
        endpoint: e.GPULAB_S3_ENDPOINT,
        region: e.GPULAB_S3_REGION,
        bucket: e.GPULAB_S3_BUCKET,
        accessKeyId: e.GPULAB_S3_ACCESS_KEY_ID,
        secretAccessKey: e.GPULAB_S3_SECRET_ACCESS_KEY,
        forcePathStyle: e.GPULAB_S3_FORCE_PATH_STYLE,
      },
    },
    specJson: e.GPULAB_JOB_SPEC,
  };
}

export function parseSpec(json: string): JobSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new SpecError(`GPULAB_JOB_SPEC is not JSON: ${(e as Error).message}`);
  }
  const parsed = JobSpecSchema.safeParse(raw);
  if (!parsed.success) throw new SpecError(`invalid job spec: ${describe(parsed.error)}`);
  return parsed.data;
}

const S3EnvSchema = EnvSchema.pick({
  GPULAB_S3_ENDPOINT: true,
  GPULAB_S3_REGION: true,
  GPULAB_S3_ACCESS_KEY_ID: true,
  GPULAB_S3_SECRET_ACCESS_KEY: true,
  GPULAB_S3_FORCE_PATH_STYLE: true,
});

/** Only the S3 connection settings (for `cli predict` with an s3:// model); the bucket comes from the URI. */
export function parseS3Env(env: NodeJS.ProcessEnv): Omit<TrainerConfig['s3'], 'bucket'> {
  const parsed = S3EnvSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid S3 environment: ${describe(parsed.error)}`);
  const e = parsed.data;
  return {
    endpoint: e.GPULAB_S3_ENDPOINT,
    region: e.GPULAB_S3_REGION,
    accessKeyId: e.GPULAB_S3_ACCESS_KEY_ID,
    secretAccessKey: e.GPULAB_S3_SECRET_ACCESS_KEY,
    forcePathStyle: e.GPULAB_S3_FORCE_PATH_STYLE,
  };
}
