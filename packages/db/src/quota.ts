import { GpulabError, type JobStatus, type TransitionReason } from '@gpulab/core';
import { announceJobEnd, announceLowBalance } from './announcements';
import type { Db, Tx } from './client';
import { returnToReservation } from './reservations';
import { transitionJob } from './transitions';

export interface QuotaBalance {
  grantedSeconds: number;
  heldSeconds: number;
  usedSeconds: number;
  freeSeconds: number;
}

export function balanceOf(m: { grantedSeconds: number; heldSeconds: number; usedSeconds: number }): QuotaBalance {
  return { ...m, freeSeconds: m.grantedSeconds - m.heldSeconds - m.usedSeconds };
}

/**
 * Holds `seconds` against a membership only if that many are free — a conditional UPDATE, so concurrent admissions
 * can never overspend. Returns false when the quota does not cover it.
 */
export async function tryHold(tx: Tx, membershipId: string, seconds: number): Promise<boolean> {
  const n = await tx.$executeRaw`
    UPDATE memberships SET held_seconds = held_seconds + ${seconds}
    WHERE id = ${membershipId}::uuid AND granted_seconds - held_seconds - used_seconds >= ${seconds}`;
  return n === 1;
}

export type AdmitResult = { admitted: true } | { admitted: false; reason: 'quota' | 'conflict' };

/** QUEUED -> ADMITTED with the hold taken in the same transaction; nothing changes unless both succeed. */
export async function admitJob(db: Db, job: { id: string; membershipId: string; holdSeconds: number }, at: Date) {
  return db
    .$transaction(async (tx): Promise<AdmitResult> => {
      if (!(await tryHold(tx, job.membershipId, job.holdSeconds))) return { admitted: false, reason: 'quota' };
      const ok = await transitionJob(tx, {
        jobId: job.id,
        from: 'QUEUED',
        to: 'ADMITTED',
        reason: 'admitted',
        at,
        data: { heldSeconds: job.holdSeconds, admittedAt: at },
      });
      if (!ok) throw new AdmitConflict();
      await tx.quotaEntry.create({
        data: { membershipId: job.membershipId, jobId: job.id, kind: 'hold', seconds: job.holdSeconds },
      });
      return { admitted: true };
    })
    .catch((e) => {
      if (e instanceof AdmitConflict) return { admitted: false, reason: 'conflict' } as AdmitResult;
      throw e;
    });
}

class AdmitConflict extends Error {}

export interface FinishInput {
  jobId: string;
  from: JobStatus;
  to: JobStatus;
  reason: TransitionReason;
  message?: string | null;
  at: Date;
}

/**
 * Moves a job to a terminal status and settles its money in one transaction: the used GPU-seconds (the sum of its
 * ledger rows, capped at the hold) are charged, the rest of the hold is released, each with a quota entry. Returns
 * false if the status CAS lost. Idempotent: quota entries are unique per (job, kind).
 */
export async function finishJob(db: Db, f: FinishInput): Promise<boolean> {
  return db.$transaction(async (tx) => {
    // lock the job row first: a forced revoke that shrinks this job's hold must not interleave with settlement
    await tx.$queryRaw`SELECT id FROM jobs WHERE id = ${f.jobId}::uuid FOR UPDATE`;
    const job = await tx.job.findUnique({ where: { id: f.jobId } });
    if (!job) throw new GpulabError('NOT_FOUND', `job ${f.jobId} not found`);
    const agg = await tx.costLedger.aggregate({
      where: { jobId: f.jobId },
      _sum: { gpuSeconds: true, amountMicros: true },
    });
    const used = agg._sum.gpuSeconds ?? 0;
    const cost = agg._sum.amountMicros ?? 0n;
    const ok = await transitionJob(tx, {
      jobId: f.jobId,
      from: f.from,
      to: f.to,
      reason: f.reason,
      message: f.message ?? null,
      at: f.at,
      data: { finishedAt: f.at, usedSeconds: used, costMicros: cost, stopRequested: null },
    });
    if (!ok) return false;
    const before = await tx.membership.findUniqueOrThrow({ where: { id: job.membershipId } });
    await settleHold(tx, {
      jobId: job.id,
      membershipId: job.membershipId,
      held: job.heldSeconds,
      used,
      reservationId: job.reservationId,
    });
    await announceJobEnd(tx, {
      id: job.id,
      name: job.name,
      userId: job.userId,
      groupId: job.groupId,
      status: f.to,
      reason: f.reason,
      message: f.message ?? null,
      usedSeconds: used,
      costMicros: cost,
      at: f.at,
    });
    // "free before" counts this job's hold as free-to-be: the crossing is about what the member can still spend
    await announceLowBalance(tx, {
      membershipId: job.membershipId,
      userId: job.userId,
      groupId: job.groupId,
      jobId: job.id,
      freeBefore: before.grantedSeconds - before.usedSeconds - (before.heldSeconds - job.heldSeconds),
      at: f.at,
    });
    return true;
  });
}

/**
 * Releases a job's hold and charges `used` of it. A job that never held anything settles nothing. The unused rest of
 * a job that ran in a reservation goes back to the reservation while it is live (still held there), else is freed.
 */
export async function settleHold(
  tx: Tx,
  s: { jobId: string; membershipId: string; held: number; used: number; reservationId?: string | null },
) {
  if (s.held === 0 && s.used === 0) return;
  if (s.used > s.held) throw new GpulabError('INTERNAL', `job ${s.jobId} used ${s.used}s beyond its ${s.held}s hold`);
  const already = await tx.quotaEntry.findFirst({ where: { jobId: s.jobId, kind: { in: ['settle', 'release'] } } });
  if (already) return;
  const rest = s.held - s.used;
  const freed = s.reservationId ? await returnToReservation(tx, s.reservationId, rest) : rest;
  await tx.$executeRaw`
    UPDATE memberships SET held_seconds = held_seconds - ${s.used + freed}, used_seconds = used_seconds + ${s.used}
    WHERE id = ${s.membershipId}::uuid`;
  await tx.quotaEntry.createMany({
    data: [
      { membershipId: s.membershipId, jobId: s.jobId, kind: 'settle', seconds: s.used },
      {
        membershipId: s.membershipId,
        jobId: s.jobId,
        reservationId: s.reservationId ?? null,
        kind: 'release',
        seconds: freed,
        note: freed === rest ? null : `${rest - freed} s returned to the reservation`,
      },
    ],
  });
}

/** Adds (or, negative, revokes) granted seconds, with a ledger entry. Revoking never takes back held or used time. */
export async function grantSeconds(
  db: Db,
  g: { membershipId: string; seconds: number; actorId?: string | null; note?: string | null },
) {
  return db.$transaction(async (tx) => {
    const n =
      g.seconds >= 0
        ? await tx.$executeRaw`UPDATE memberships SET granted_seconds = granted_seconds + ${g.seconds} WHERE id = ${g.membershipId}::uuid`
        : await tx.$executeRaw`UPDATE memberships SET granted_seconds = granted_seconds + ${g.seconds}
            WHERE id = ${g.membershipId}::uuid AND granted_seconds - held_seconds - used_seconds >= ${-g.seconds}`;
    if (n !== 1) throw new GpulabError('CONFLICT', 'cannot revoke more than the free balance');
    await tx.quotaEntry.create({
      data: {
        membershipId: g.membershipId,
        kind: g.seconds >= 0 ? 'grant' : 'revoke',
        seconds: Math.abs(g.seconds),
        actorId: g.actorId ?? null,
        note: g.note ?? null,
      },
    });
  });
}
