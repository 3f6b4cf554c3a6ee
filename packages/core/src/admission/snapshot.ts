import type { DecayedUsage } from './fair-share';

/**
 * The in-memory snapshot one admission pass works on (Kueue style): the caller reads it from Postgres, `admit`
 * reserves capacity and quota in memory only, and the caller then commits each decision with a conditional UPDATE
 * (`tryHold` / `admitJob`), skipping a decision whose commit loses a race — the next pass sees the new state.
 *
 * Units: GPU-seconds for quota and usage, GPUs for capacity, milliseconds since epoch as `Date`s for time, integer
 * micros per GPU-hour for prices.
 */

/** A QUEUED job waiting for admission. */
export interface PendingJob {
  id: string;
  userId: string;
  membershipId: string;
  groupId: string;
  flavor: string;
  gpus: number;
  /** GPU-seconds to hold at admission: `maxHours × gpus × 3600`. */
  holdSeconds: number;
  /** Integer, higher first. */
  priority: number;
  submittedAt: Date;
  /** Wall-clock upper bound: the job is stopped once it reaches it. */
  maxRuntimeSeconds: number;
}

/** A user's quota inside a group (free = granted − held − used). */
export interface MembershipBalance {
  id: string;
  grantedSeconds: number;
  heldSeconds: number;
  usedSeconds: number;
}

/** A GPU type: how many exist, how many are busy now, and its price. */
export interface FlavorState {
  name: string;
  /** Total GPUs of this flavor. */
  capacity: number;
  /**
   * GPUs busy now (every job in ADMITTED, LAUNCHING, RUNNING, RETRYING). GPUs in use beyond those listed in
   * `running` (e.g. a node drained by hand) are treated as busy with no known end.
   */
  inUse: number;
  rateMicrosPerGpuHour: number;
}

/** A job that occupies GPUs now (admitted or running). */
export interface RunningJob {
  id: string;
  userId: string;
  groupId: string;
  flavor: string;
  gpus: number;
  /** When it will have ended at the latest (start + max runtime); a past value means "any moment". */
  expectedEnd: Date;
  /** Set when the job runs inside its owner's reservation (it uses reserved GPUs, not the shared pool). */
  reservationId?: string | null;
}

/** `gpus` GPUs of `flavor` kept for `userId`'s jobs during `[start, end)`; its hold was taken at booking. */
export interface Reservation {
  id: string;
  userId: string;
  flavor: string;
  gpus: number;
  start: Date;
  end: Date;
}

/** A user's fair-share standing: stored decayed usage and weight (share). Users not listed have weight 1 and no usage. */
export interface UserShare {
  userId: string;
  weight: number;
  usage: DecayedUsage;
}

export interface AdmissionPolicy {
  /** Half-life of usage in the fair-share key. */
  halfLifeSeconds: number;
  /** Default cap on a user's running GPUs within one group (shared pool only; reserved GPUs do not count). */
  defaultMaxRunningGpusPerUser: number;
  /** Per-group override of that cap, by group id. */
  maxRunningGpusPerUserByGroup?: Readonly<Record<string, number>>;
}

export interface AdmissionSnapshot {
  pending: readonly PendingJob[];
  memberships: readonly MembershipBalance[];
  flavors: readonly FlavorState[];
  running: readonly RunningJob[];
  reservations: readonly Reservation[];
  shares: readonly UserShare[];
  policy: AdmissionPolicy;
}

/** One job to admit: the caller commits it (QUEUED → ADMITTED) and, unless it runs in a reservation, holds quota. */
export interface AdmissionDecision {
  jobId: string;
  userId: string;
  membershipId: string;
  flavor: string;
  gpus: number;
  /** GPU-seconds to hold now; 0 when the job runs in its owner's reservation (held at booking). */
  holdSeconds: number;
  /** True: runs on GPUs reserved for its owner, whose hold was taken at booking — do not hold again. */
  usesReservation: boolean;
  reservationId: string | null;
  /** Admitted past a job ahead of it that does not fit yet, without delaying that job's estimated start. */
  backfilled: boolean;
  /** Latest end: now + max runtime. */
  expectedEnd: Date;
}

export const PENDING_REASONS = ['quota', 'capacity', 'fair-share', 'reservation', 'user-cap'] as const;
export type PendingReason = (typeof PENDING_REASONS)[number];

/** Why a job waits, for people. */
export interface PendingInfo {
  jobId: string;
  reason: PendingReason;
  /** One sentence with numbers, e.g. "needs 2.00 GPU-h; 0.50 GPU-h free of 4.00 granted …". */
  message: string;
  /** 1-based rank among the waiting jobs of its flavor, in admission order. */
  position: number;
  /** Estimated start from running jobs' ends and the jobs ahead; null when it cannot start as things stand. */
  estimatedStart: Date | null;
}

export interface AdmissionResult {
  /** In admission order. */
  admitted: AdmissionDecision[];
  /** In admission order. */
  pending: PendingInfo[];
}

/** The running-GPU cap that applies to a user's jobs in `groupId`. */
export function userCapOf(policy: AdmissionPolicy, groupId: string): number {
  return policy.maxRunningGpusPerUserByGroup?.[groupId] ?? policy.defaultMaxRunningGpusPerUser;
}
