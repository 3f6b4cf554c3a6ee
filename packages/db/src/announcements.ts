import type { JobStatus } from '@gpulab/core';
import type { Tx } from './client';
import { announce, type WebhookEvent } from './webhooks';

const EVENT_OF: Partial<Record<JobStatus, WebhookEvent>> = {
  SUCCEEDED: 'job.succeeded',
  FAILED: 'job.failed',
  CANCELLED: 'job.cancelled',
  TIMED_OUT: 'job.timed_out',
  BUDGET_EXHAUSTED: 'job.budget_exhausted',
};

/** A member's balance is "low" below this share of what was granted. */
export const LOW_BALANCE_FRACTION = 0.1;

/** Announces a job's terminal status (in the transaction that set it). */
export async function announceJobEnd(
  tx: Tx,
  j: {
    id: string;
    name: string | null;
    userId: string;
    groupId: string;
    status: JobStatus;
    reason: string;
    message: string | null;
    usedSeconds: number;
    costMicros: bigint;
    at: Date;
  },
): Promise<void> {
  const event = EVENT_OF[j.status];
  if (!event) return;
  await announce(tx, {
    event,
    eventKey: `job:${j.id}:${j.status}`,
    userId: j.userId,
    groupId: j.groupId,
    at: j.at,
    payload: {
      job: { id: j.id, name: j.name, status: j.status, reason: j.reason, message: j.message },
      usedGpuHours: j.usedSeconds / 3600,
      cost: Number(j.costMicros) / 1e6,
    },
  });
}

/**
 * Announces `quota.low` when a settlement takes a member's free balance from at or above 10% of what they were
 * granted to below it — once per crossing (the key carries the settlement that crossed).
 */
export async function announceLowBalance(
  tx: Tx,
  m: { membershipId: string; userId: string; groupId: string; jobId: string; freeBefore: number; at: Date },
): Promise<void> {
  const now = await tx.membership.findUniqueOrThrow({ where: { id: m.membershipId } });
  const threshold = now.grantedSeconds * LOW_BALANCE_FRACTION;
  const freeAfter = now.grantedSeconds - now.heldSeconds - now.usedSeconds;
  if (!(m.freeBefore >= threshold && freeAfter < threshold)) return;
  await announce(tx, {
    event: 'quota.low',
    eventKey: `quota-low:${m.membershipId}:${m.jobId}`,
    userId: m.userId,
    groupId: m.groupId,
    at: m.at,
    payload: {
      membershipId: m.membershipId,
      groupId: m.groupId,
      grantedHours: now.grantedSeconds / 3600,
      usedHours: now.usedSeconds / 3600,
      heldHours: now.heldSeconds / 3600,
      freeHours: freeAfter / 3600,
    },
  });
}
