import type { S3Client } from '@aws-sdk/client-s3';
import type { AdmissionPolicy } from '@gpulab/core';
import type { Db } from '@gpulab/db';
import type { Logger } from '@gpulab/logger';
import type { DispatchQueue, LogBus } from '@gpulab/queue';
import type { Launcher } from './launchers/launcher';

export interface SchedulerDeps {
  db: Db;
  launcher: Launcher;
  queue: DispatchQueue;
  clock: () => Date;
  log: Logger;
  /** Environment every trainer gets (API URL, S3 settings); job-specific variables are added per attempt. */
  trainerEnv: Record<string, string>;
  stopGraceMs: number;
  intervalMs: number;
  /** Fair-share half-life and per-user caps for admission. */
  policy: AdmissionPolicy;
  /** A booking no job used this long after its start is released. */
  reservationGraceMs: number;
  /** Live log bus (Redis) the launcher's output goes to; absent in tests that do not look at logs. */
  logs?: LogBus;
  /** Where each attempt's log is archived when it ends (`jobs/<id>/logs/attempt-<n>.log`). */
  archive?: { s3: S3Client; bucket: string };
}
