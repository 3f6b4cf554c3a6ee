import type { JobSpecInput, JobStatus } from '@gpulab/core';

/** Response shapes of the REST API v1 (the OpenAPI document at /openapi.json describes the requests). */

export interface EpochMetric {
  attempt: number;
  epoch: number;
  epochs: number;
  trainLoss: number;
  valLoss: number;
  valAcc: number;
  lr: number | null;
  seconds: number | null;
  perClassAcc: unknown;
  confusion: unknown;
}

export interface Job {
  id: string;
  userId: string;
  groupId: string;
  name: string | null;
  status: JobStatus;
  statusReason: string;
  statusMessage: string | null;
  pending: { reason: string; message: string | null; position: number | null; estimatedStartAt: string | null } | null;
  priority: number;
  maxRuntimeSeconds: number;
  reservationId: string | null;
  attempt: number;
  maxAttempts: number;
  flavor: string;
  gpus: number;
  backend: string | null;
  spec: JobSpecInput;
  createdAt: string;
  admittedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  hold: { gpuSeconds: number; gpuHours: number };
  cost: {
    gpuSeconds: number;
    gpuHours: number;
    amountMicros: number;
    amount: number;
    ledger: {
      hourStart: string;
      gpuSeconds: number;
      rateMicrosPerHour: number;
      amountMicros: number;
      closed: boolean;
    }[];
  };
  summary: unknown;
  transitions: { from: JobStatus | null; to: JobStatus; reason: string; message: string | null; at: string }[];
  attempts: {
    attempt: number;
    launcher: string;
    handle: string;
    startedAt: string | null;
    endedAt: string | null;
    exitCode: number | null;
    signal: string | null;
    charged: boolean;
    outcome: string | null;
  }[];
  metrics: EpochMetric[];
  artifacts: { kind: string; key: string; bytes: number | null }[];
}

export interface ArtifactFile {
  path: string;
  key: string;
  bytes: number;
  url: string;
}

export interface JobArtifacts {
  expiresInSeconds: number;
  model: ArtifactFile[];
  metrics: ArtifactFile | null;
  logs: ArtifactFile[];
  checkpoints: { key: string; at: string }[];
}

export interface JobListItem {
  id: string;
  name: string | null;
  userId: string;
  groupId: string;
  flavor: string;
  gpus: number;
  status: JobStatus;
  statusReason: string;
  pendingReason: string | null;
  queuePosition: number | null;
  estimatedStartAt: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  costMicros: number;
  usedSeconds: number;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Quota {
  group: { id: string; name: string };
  grantedHours: number;
  heldHours: number;
  usedHours: number;
  freeHours: number;
}

export interface Me {
  id: string;
  email: string;
  name: string;
  role: 'student' | 'instructor' | 'admin';
  quotas: Quota[];
}

export interface QuoteResult {
  group: { id: string; name: string };
  flavor: string;
  gpus: number;
  gpuHours: number;
  holdSeconds: number;
  rateMicrosPerGpuHour: number | null;
  costMicros: number | null;
  cost: number | null;
  admitNow: boolean;
  usesReservation: boolean;
  estimatedStart: string | null;
  pending: { reason: string | null; message: string | null; position: number | null } | null;
}

export interface Reservation {
  id: string;
  userId: string;
  groupId: string;
  flavor: string;
  gpus: number;
  start: string;
  end: string;
  status: 'booked' | 'ended' | 'released' | 'cancelled';
  bookedHours: number;
  heldHours: number;
  firstUsedAt: string | null;
  note: string | null;
  createdAt: string;
  closedAt: string | null;
  closeReason: string | null;
}

export interface Flavor {
  name: string;
  pricePerGpuHour: number;
  rateMicrosPerGpuHour: number;
  capacity: number;
  inUse: number;
}

/** A submission: a job spec plus the group to charge and (instructors, admins) a priority. */
export type SubmitRequest = JobSpecInput & { group?: string; priority?: number };

export const TERMINAL_STATUSES: readonly JobStatus[] = [
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'TIMED_OUT',
  'BUDGET_EXHAUSTED',
];
