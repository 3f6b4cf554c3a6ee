import { hourlyLedger, type Interval } from '@gpulab/core';
import type { Db } from './client';

export interface MeterInput {
  jobId: string;
  gpus: number;
  rateMicrosPerHour: number;
  /** GPU-seconds the job may be charged at most (its hold). */
  capSeconds: number;
  /** Charged running intervals (attempts whose time is billable); open ones end at `now`. */
  intervals: Interval[];
  now: Date;
}

/**
 * Writes the job's hourly cost rows from its charged running intervals: one row per clock hour, upserted (so the
 * meter is idempotent and can run on every tick), closed once the hour has ended; rows of hours left without charged
 * time are removed. The total is capped at the hold:
 * the last rows are trimmed so a job is never charged beyond what it reserved.
 */
export async function meterJob(db: Db, m: MeterInput): Promise<{ gpuSeconds: number; amountMicros: number }> {
  const rows = hourlyLedger(m.intervals, m.gpus, m.rateMicrosPerHour, m.now.getTime());
  // an hour keeps the rate it was first charged at: a price change applies to hours metered after it
  const existing = await db.costLedger.findMany({
    where: { jobId: m.jobId },
    select: { hourStart: true, rateMicros: true },
  });
  const rateOf = new Map(existing.map((e) => [e.hourStart.getTime(), Number(e.rateMicros)]));
  let remaining = m.capSeconds;
  const capped = rows.map((r) => {
    const gpuSeconds = Math.min(r.gpuSeconds, Math.max(0, remaining));
    remaining -= gpuSeconds;
    const rateMicrosPerHour = rateOf.get(r.hourStart) ?? r.rateMicrosPerHour;
    return { ...r, gpuSeconds, rateMicrosPerHour, amountMicros: Math.round((gpuSeconds * rateMicrosPerHour) / 3600) };
  });
  await db.$transaction([
    // hours that no longer carry charged time (an attempt found uncharged after the fact) are dropped
    db.costLedger.deleteMany({
      where: { jobId: m.jobId, hourStart: { notIn: capped.map((r) => new Date(r.hourStart)) } },
    }),
    ...capped.map((r) =>
      db.costLedger.upsert({
        where: { jobId_hourStart: { jobId: m.jobId, hourStart: new Date(r.hourStart) } },
        create: {
          jobId: m.jobId,
          hourStart: new Date(r.hourStart),
          gpuSeconds: r.gpuSeconds,
          rateMicros: BigInt(r.rateMicrosPerHour),
          amountMicros: BigInt(r.amountMicros),
          closed: r.closed,
        },
        update: {
          gpuSeconds: r.gpuSeconds,
          rateMicros: BigInt(r.rateMicrosPerHour),
          amountMicros: BigInt(r.amountMicros),
          closed: r.closed,
        },
      }),
    ),
  ]);
  return {
    gpuSeconds: capped.reduce((s, r) => s + r.gpuSeconds, 0),
    amountMicros: capped.reduce((s, r) => s + r.amountMicros, 0),
  };
}

/** Charged intervals of a job from its attempts: attempts marked uncharged (infrastructure failures) are excluded. */
export async function chargedIntervals(db: Db, jobId: string, now: Date): Promise<Interval[]> {
  const attempts = await db.jobAttempt.findMany({ where: { jobId, charged: true, startedAt: { not: null } } });
  return attempts.map((a) => ({
    startMs: a.startedAt!.getTime(),
    endMs: Math.max(a.startedAt!.getTime(), (a.chargedUntil ?? a.endedAt ?? now).getTime()),
  }));
}
