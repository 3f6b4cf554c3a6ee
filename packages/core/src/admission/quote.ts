import type { JobSpec } from '../job-spec';
import { amountFor, hoursToSeconds } from '../money';
import { runAdmission } from './engine';
import type { AdmissionSnapshot, PendingReason } from './snapshot';

/** What a student would submit: who, where, and how much. */
export interface QuoteRequest {
  userId: string;
  membershipId: string;
  groupId: string;
  flavor: string;
  gpus: number;
  /** Upper bound on wall time; `maxHours × gpus` is held. */
  maxHours: number;
  priority?: number;
}

/** The answer of the quote endpoint: what the job would hold and cost at most, and when it would start. */
export interface Quote {
  /** GPU-hours held at admission (`maxHours × gpus`), the most the job can use. */
  gpuHours: number;
  holdSeconds: number;
  /** Null for an unknown flavor. */
  rateMicrosPerGpuHour: number | null;
  /** Price of the full hold (price per GPU-hour × GPU-hours), in micros; the bill is only what is used. */
  costMicros: number | null;
  /** True when a pass run now would admit it. */
  admitNow: boolean;
  /** It would run in the requester's booking (no new hold). */
  usesReservation: boolean;
  /** Now when admitted now; otherwise the estimate of a waiting job; null when it cannot start. */
  estimatedStart: Date | null;
  /** Why it would wait (null when admitted now). */
  reason: PendingReason | null;
  message: string | null;
  /** Its position in the flavor's queue (null when admitted now). */
  position: number | null;
}

/** Id of the imaginary job a quote places in the queue; no real id (a UUID) can equal it. */
export const QUOTE_JOB_ID = '\u0000quote';

/**
 * Quotes a job as if it were submitted now: runs one admission pass over the snapshot plus the imaginary job
 * (priority 0 unless given, submitted now, so it queues behind every job already waiting with the same priority
 * and fair-share key). The snapshot is not changed. O(n log n) like a pass.
 */
export function quote(req: QuoteRequest, snapshot: AdmissionSnapshot, now: Date): Quote {
  const holdSeconds = hoursToSeconds(req.maxHours * req.gpus);
  const rate = snapshot.flavors.find((f) => f.name === req.flavor)?.rateMicrosPerGpuHour ?? null;
  const result = runAdmission(
    {
      ...snapshot,
      pending: [
        ...snapshot.pending,
        {
          id: QUOTE_JOB_ID,
          userId: req.userId,
          membershipId: req.membershipId,
          groupId: req.groupId,
          flavor: req.flavor,
          gpus: req.gpus,
          holdSeconds,
          priority: req.priority ?? 0,
          submittedAt: now,
          maxRuntimeSeconds: hoursToSeconds(req.maxHours),
        },
      ],
    },
    now,
    QUOTE_JOB_ID,
  );
  const base = {
    gpuHours: holdSeconds / 3600,
    holdSeconds,
    rateMicrosPerGpuHour: rate,
    costMicros: rate === null ? null : amountFor(holdSeconds, rate),
  };
  const admitted = result.admitted.find((d) => d.jobId === QUOTE_JOB_ID);
  if (admitted) {
    return {
      ...base,
      admitNow: true,
      usesReservation: admitted.usesReservation,
      estimatedStart: now,
      reason: null,
      message: null,
      position: null,
    };
  }
  const p = result.pending.find((x) => x.jobId === QUOTE_JOB_ID);
  return {
    ...base,
    admitNow: false,
    usesReservation: false,
    estimatedStart: p?.estimatedStart ?? null,
    reason: p?.reason ?? null,
    message: p?.message ?? null,
    position: p?.position ?? null,
  };
}

/** `quote` for a parsed job spec (its `resources` give flavor, GPUs and max hours). */
export function quoteSpec(
  spec: JobSpec,
  who: { userId: string; membershipId: string; groupId: string; priority?: number; defaultMaxHours: number },
  snapshot: AdmissionSnapshot,
  now: Date,
): Quote {
  const { flavor, gpus } = spec.resources;
  const { defaultMaxHours, ...rest } = who;
  return quote({ ...rest, flavor, gpus, maxHours: spec.resources.maxHours ?? defaultMaxHours }, snapshot, now);
}
