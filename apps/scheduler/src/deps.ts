import type { AdmissionPolicy } from '@gpulab/core';
import type { Db } from '@gpulab/db';
import type { Logger } from '@gpulab/logger';
import type { DispatchQueue } from '@gpulab/queue';
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
}
