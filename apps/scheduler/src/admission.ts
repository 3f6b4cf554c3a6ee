import { admit } from '@gpulab/core';
import { admitIntoReservation, admitJob, loadAdmissionSnapshot, writePendingInfo } from '@gpulab/db';
import type { SchedulerDeps } from './deps';

export interface PassResult {
  admitted: string[];
  /** Decisions whose commit lost a race (quota or booking changed since the snapshot); retried next pass. */
  conflicts: string[];
  waiting: number;
}

/**
 * One admission pass, Kueue style: read a snapshot of QUEUED jobs, quotas, flavors (capacity from the launcher),
 * running jobs, bookings and fair-share usage; let the engine (@gpulab/core `admit`) decide in memory — priority,
 * then fair share by decayed usage, then submit time, with per-user caps, bookings and backfill; then commit each
 * admission in Postgres with a conditional UPDATE (hold and QUEUED → ADMITTED in one transaction). A decision whose
 * commit fails is rolled back and skipped: the next pass sees the new state. Every job left waiting gets its reason,
 * a sentence, its queue position and an estimated start. Runs on the leader only, with the injected clock.
 */
export async function admissionPass(deps: SchedulerDeps): Promise<PassResult> {
  const { db, log } = deps;
  const now = deps.clock();
  const capacity = await deps.launcher.capacity();
  const snapshot = await loadAdmissionSnapshot(db, { capacity, policy: deps.policy, now });
  const result = admit(snapshot, now);

  const holdOf = new Map(snapshot.pending.map((p) => [p.id, p.holdSeconds]));
  const admitted: string[] = [];
  const conflicts: string[] = [];
  for (const d of result.admitted) {
    const res =
      d.usesReservation && d.reservationId
        ? await admitIntoReservation(
            db,
            {
              jobId: d.jobId,
              reservationId: d.reservationId,
              membershipId: d.membershipId,
              holdSeconds: holdOf.get(d.jobId) ?? 0,
            },
            now,
          )
        : await admitJob(db, { id: d.jobId, membershipId: d.membershipId, holdSeconds: d.holdSeconds }, now);
    if (res.admitted) {
      admitted.push(d.jobId);
      log.info(
        {
          jobId: d.jobId,
          flavor: d.flavor,
          gpus: d.gpus,
          holdSeconds: d.holdSeconds,
          reservationId: d.reservationId,
          backfilled: d.backfilled,
        },
        'job admitted',
      );
    } else {
      conflicts.push(d.jobId);
      log.warn({ jobId: d.jobId, reason: res.reason }, 'admission lost a race; retrying next pass');
    }
  }
  await writePendingInfo(db, result.pending);
  return { admitted, conflicts, waiting: result.pending.length };
}
