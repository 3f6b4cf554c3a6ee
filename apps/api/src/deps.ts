import type { S3Client } from '@aws-sdk/client-s3';
import type { AdmissionPolicy } from '@gpulab/core';
import type { Db } from '@gpulab/db';
import type { DispatchQueue, LogBus } from '@gpulab/queue';
import type { Redis } from 'ioredis';
import type { RateLimitSettings } from './plugins/rate-limit';
import type { DatasetSettings } from './services/dataset-settings';

/** Everything the routes need, built once in main.ts (or a test). */
export interface ApiDeps {
  db: Db;
  redis: Redis;
  queue: DispatchQueue;
  s3: S3Client;
  bucket: string;
  clock: () => Date;
  maxAttempts: number;
  /** Admission policy (fair-share half-life, per-user caps) for quotes; the scheduler's, from the same config. */
  policy: AdmissionPolicy;
  /** Dashboard sessions; defaults: 7 days sliding, cookies not marked Secure (set it behind HTTPS). */
  sessions?: SessionSettings;
  /** Dataset upload limits and knobs; defaults in services/dataset-settings.ts. */
  datasets?: Partial<DatasetSettings>;
  /** The live log bus the scheduler writes trainers' output to; without it only archived logs (S3) are served. */
  logs?: LogBus;
  /** Per-token request limit (Redis); absent: no limit. */
  rateLimit?: RateLimitSettings;
  /** Webhook URLs may point to private addresses (local mode, tests); default false. */
  webhooks?: { allowPrivate: boolean };
}

export interface SessionSettings {
  ttlMs: number;
  secureCookies: boolean;
}

export function sessionSettings(deps: ApiDeps): SessionSettings {
  return deps.sessions ?? { ttlMs: 7 * 24 * 3600_000, secureCookies: false };
}
