import { canTransition, GpulabError, type JobStatus, type TransitionReason } from '@gpulab/core';
import type { Prisma } from '@prisma/client';
import type { Db, Tx } from './client';

export interface TransitionInput {
  jobId: string;
  from: JobStatus;
  to: JobStatus;
  reason: TransitionReason;
  message?: string | null;
  at: Date;
  /** Extra columns to set in the same UPDATE. */
  data?: Prisma.JobUpdateManyMutationInput;
}

/**
 * Compare-and-set of a job's status: `UPDATE jobs SET status = to WHERE id = $id AND status = from`, plus a
 * transition row, in the caller's transaction. Returns false when another writer changed the status first (zero rows
 * updated): the caller must re-read, never overwrite. Throws on a transition the table forbids.
 */
export async function transitionJob(tx: Tx, t: TransitionInput): Promise<boolean> {
  if (!canTransition(t.from, t.to))
    throw new GpulabError('INVALID_TRANSITION', `job ${t.jobId}: ${t.from} -> ${t.to} is not allowed`, {
      from: t.from,
      to: t.to,
    });
  const res = await tx.job.updateMany({
    where: { id: t.jobId, status: t.from },
    data: {
      ...t.data,
      status: t.to,
      statusReason: t.reason,
      statusMessage: t.message ?? null,
      ...(t.to === 'QUEUED' || t.to === 'RETRYING' ? {} : { pendingReason: null, pendingMessage: null }),
    },
  });
  if (res.count === 0) return false;
  await tx.jobTransition.create({
    data: { jobId: t.jobId, from: t.from, to: t.to, reason: t.reason, message: t.message ?? null, at: t.at },
  });
  return true;
}

/** `transitionJob` in its own transaction. */
export function transition(db: Db, t: TransitionInput): Promise<boolean> {
  return db.$transaction((tx) => transitionJob(tx, t));
}
