import { GpulabError } from '@gpulab/core';
import { Prisma, type Reservation } from '@prisma/client';
import type { Db, Tx } from './client';
import { tryHold } from './quota';
import { transitionJob } from './transitions';

/**
 * Reservations (bookings): a user books `gpus` GPUs of a flavor for `[start, end)`. The hold — gpus × duration
 * GPU-seconds — is taken from the user's quota at booking, in the same transaction that checks capacity, which is
 * serialized per flavor with an advisory lock, so two bookings can never together exceed the flavor's capacity at
 * any moment. During the window those GPUs run only the owner's jobs (the admission engine enforces it); a job
 * admitted into the booking takes its hold out of the booking's (`transfer`), and gives back what it did not use
 * when it ends. What the booking still holds is released to the quota when the window ends — or earlier, when no
 * job used it within the grace period after its start, so that a forgotten booking does not idle the GPUs.
 */

export const LIVE_RESERVATION = 'booked';
/** Longest bookable window; longer blocks of GPUs are an admin's job (flavor capacity). */
export const MAX_RESERVATION_SECONDS = 7 * 24 * 3600;

export interface CreateReservationInput {
  userId: string;
  membershipId: string;
  groupId: string;
  flavor: string;
  gpus: number;
  start: Date;
  end: Date;
  note?: string | null;
  idempotencyKey?: string | null;
  now: Date;
}

/** GPUs of `flavor` booked at the busiest moment of `[start, end)` by live bookings (sweep over their edges). */
export function peakBooked(bookings: readonly { startAt: Date; endAt: Date; gpus: number }[], start: Date, end: Date) {
  const edges: [number, number][] = [];
  for (const b of bookings) {
    const s = Math.max(b.startAt.getTime(), start.getTime());
    const e = Math.min(b.endAt.getTime(), end.getTime());
    if (s >= e) continue;
    edges.push([s, b.gpus], [e, -b.gpus]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let peak = 0;
  for (const [, d] of edges) {
    cur += d;
    peak = Math.max(peak, cur);
  }
  return peak;
}

/** Books GPUs; 409 CONFLICT when the flavor's capacity is already booked at some moment of the window. */
export async function createReservation(
  db: Db,
  r: CreateReservationInput,
): Promise<{ reservation: Reservation; created: boolean }> {
  const seconds = Math.round((r.end.getTime() - r.start.getTime()) / 1000);
  if (!(r.end.getTime() > r.start.getTime()))
    throw new GpulabError('VALIDATION', 'end must be after start', { field: 'end' });
  if (r.end.getTime() <= r.now.getTime())
    throw new GpulabError('VALIDATION', 'the window has already ended', { field: 'end' });
  if (r.start.getTime() < r.now.getTime() - 60_000)
    throw new GpulabError('VALIDATION', 'start must not be in the past', { field: 'start' });
  if (seconds > MAX_RESERVATION_SECONDS)
    throw new GpulabError('VALIDATION', `a reservation lasts at most ${MAX_RESERVATION_SECONDS / 3600} hours`, {
      field: 'end',
    });
  if (r.idempotencyKey) {
    const existing = await db.reservation.findUnique({
      where: { userId_idempotencyKey: { userId: r.userId, idempotencyKey: r.idempotencyKey } },
    });
    if (existing) return { reservation: sameOrMismatch(existing, r), created: false };
  }
  const holdSeconds = seconds * r.gpus;
  try {
    const reservation = await db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`gpulab:reservation:${r.flavor}`}))`;
      const flavor = await tx.flavor.findUnique({ where: { name: r.flavor } });
      if (!flavor) throw new GpulabError('VALIDATION', `unknown GPU flavor "${r.flavor}"`, { field: 'flavor' });
      if (r.gpus > flavor.capacity)
        throw new GpulabError(
          'VALIDATION',
          `flavor "${r.flavor}" has ${flavor.capacity} GPU(s); cannot book ${r.gpus}`,
          {
            field: 'gpus',
          },
        );
      const overlapping = await tx.reservation.findMany({
        where: { flavor: r.flavor, status: LIVE_RESERVATION, startAt: { lt: r.end }, endAt: { gt: r.start } },
        select: { startAt: true, endAt: true, gpus: true },
      });
      const peak = peakBooked(overlapping, r.start, r.end);
      if (peak + r.gpus > flavor.capacity)
        throw new GpulabError(
          'CONFLICT',
          `${r.flavor}: ${peak} of ${flavor.capacity} GPU(s) are already booked during that window; ` +
            `${flavor.capacity - peak} left, ${r.gpus} asked`,
          { field: 'gpus', capacity: flavor.capacity, booked: peak },
        );
      if (!(await tryHold(tx, r.membershipId, holdSeconds))) {
        const m = await tx.membership.findUniqueOrThrow({ where: { id: r.membershipId } });
        const free = m.grantedSeconds - m.heldSeconds - m.usedSeconds;
        throw new GpulabError(
          'QUOTA_EXCEEDED',
          `booking ${r.gpus} GPU(s) for ${(seconds / 3600).toFixed(2)} h needs ${(holdSeconds / 3600).toFixed(2)} ` +
            `GPU-h; ${(free / 3600).toFixed(2)} GPU-h free`,
          { needSeconds: holdSeconds, freeSeconds: free },
        );
      }
      const created = await tx.reservation.create({
        data: {
          userId: r.userId,
          groupId: r.groupId,
          membershipId: r.membershipId,
          flavor: r.flavor,
          gpus: r.gpus,
          startAt: r.start,
          endAt: r.end,
          bookedSeconds: holdSeconds,
          heldSeconds: holdSeconds,
          note: r.note ?? null,
          idempotencyKey: r.idempotencyKey ?? null,
          createdAt: r.now,
        },
      });
      await tx.quotaEntry.create({
        data: { membershipId: r.membershipId, reservationId: created.id, kind: 'hold', seconds: holdSeconds },
      });
      return created;
    });
    return { reservation, created: true };
  } catch (e) {
    if (r.idempotencyKey && e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') {
      const existing = await db.reservation.findUnique({
        where: { userId_idempotencyKey: { userId: r.userId, idempotencyKey: r.idempotencyKey } },
      });
      if (existing) return { reservation: sameOrMismatch(existing, r), created: false };
    }
    throw e;
  }
}

function sameOrMismatch(existing: Reservation, r: CreateReservationInput): Reservation {
  const same =
    existing.flavor === r.flavor &&
    existing.gpus === r.gpus &&
    existing.startAt.getTime() === r.start.getTime() &&
    existing.endAt.getTime() === r.end.getTime();
  if (!same)
    throw new GpulabError('IDEMPOTENCY_MISMATCH', 'Idempotency-Key was already used for a different reservation', {
      field: 'Idempotency-Key',
      reservationId: existing.id,
    });
  return existing;
}

/**
 * Closes a live booking and releases what it still holds (jobs running in it keep their own holds). Idempotent:
 * closing a closed booking changes nothing and returns false.
 */
export async function closeReservation(
  db: Db,
  c: { id: string; status: 'ended' | 'released' | 'cancelled'; reason: string; at: Date },
): Promise<boolean> {
  return db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ held_seconds: number; membership_id: string }[]>`
      UPDATE reservations r SET status = ${c.status}, closed_at = ${c.at}, close_reason = ${c.reason}, held_seconds = 0
      FROM (SELECT id, held_seconds FROM reservations WHERE id = ${c.id}::uuid AND status = ${LIVE_RESERVATION} FOR UPDATE) old
      WHERE r.id = old.id
      RETURNING old.held_seconds, r.membership_id`;
    const row = rows[0];
    if (!row) return false;
    await tx.$executeRaw`
      UPDATE memberships SET held_seconds = held_seconds - ${row.held_seconds} WHERE id = ${row.membership_id}::uuid`;
    await tx.quotaEntry.create({
      data: {
        membershipId: row.membership_id,
        reservationId: c.id,
        kind: 'release',
        seconds: row.held_seconds,
        note: c.reason,
      },
    });
    return true;
  });
}

/**
 * The scheduler's reservation sweep: bookings whose window has ended are closed (`ended`); bookings that no job
 * used within `graceMs` of their start are released early (`released`), giving the GPUs back to the shared pool
 * and the hours back to the owner. Returns the ids closed.
 */
export async function sweepReservations(db: Db, now: Date, graceMs: number): Promise<{ id: string; status: string }[]> {
  const due = await db.reservation.findMany({
    where: {
      status: LIVE_RESERVATION,
      OR: [{ endAt: { lte: now } }, { firstUsedAt: null, startAt: { lte: new Date(now.getTime() - graceMs) } }],
    },
    select: { id: true, endAt: true },
  });
  const closed: { id: string; status: string }[] = [];
  for (const r of due) {
    const ended = r.endAt.getTime() <= now.getTime();
    const status = ended ? 'ended' : 'released';
    const reason = ended
      ? 'the reservation window ended'
      : `no job used the reservation within ${Math.round(graceMs / 60_000)} min of its start`;
    if (await closeReservation(db, { id: r.id, status, reason, at: now })) closed.push({ id: r.id, status });
  }
  return closed;
}

/**
 * QUEUED → ADMITTED onto the owner's booked GPUs: the job's hold (`holdSeconds`) moves out of the booking's — a
 * conditional UPDATE, so the booking can never hand out more than it holds — and the membership balance does not
 * change (those seconds were held at booking). Nothing changes unless every step succeeds.
 */
export async function admitIntoReservation(
  db: Db,
  a: { jobId: string; reservationId: string; membershipId: string; holdSeconds: number },
  at: Date,
): Promise<{ admitted: true } | { admitted: false; reason: 'reservation' | 'conflict' }> {
  try {
    return await db.$transaction(async (tx) => {
      const n = await tx.$executeRaw`
        UPDATE reservations SET held_seconds = held_seconds - ${a.holdSeconds}, first_used_at = COALESCE(first_used_at, ${at})
        WHERE id = ${a.reservationId}::uuid AND status = ${LIVE_RESERVATION} AND held_seconds >= ${a.holdSeconds}
          AND membership_id = ${a.membershipId}::uuid AND start_at <= ${at} AND end_at > ${at}`;
      if (n !== 1) return { admitted: false, reason: 'reservation' } as const;
      const ok = await transitionJob(tx, {
        jobId: a.jobId,
        from: 'QUEUED',
        to: 'ADMITTED',
        reason: 'admitted',
        message: 'admitted onto reserved GPUs',
        at,
        data: { heldSeconds: a.holdSeconds, admittedAt: at },
      });
      if (!ok) throw new Rollback();
      await tx.$executeRaw`UPDATE jobs SET reservation_id = ${a.reservationId}::uuid WHERE id = ${a.jobId}::uuid`;
      await tx.quotaEntry.create({
        data: {
          membershipId: a.membershipId,
          jobId: a.jobId,
          reservationId: a.reservationId,
          kind: 'transfer',
          seconds: a.holdSeconds,
          note: 'hold taken out of the reservation',
        },
      });
      return { admitted: true } as const;
    });
  } catch (e) {
    if (e instanceof Rollback) return { admitted: false, reason: 'conflict' };
    throw e;
  }
}

class Rollback extends Error {}

/**
 * At a reservation job's end: the unused rest of its hold goes back to its booking when the booking is still live
 * (the membership keeps holding it there); returns the seconds that could not go back and must be released.
 */
export async function returnToReservation(tx: Tx, reservationId: string, rest: number): Promise<number> {
  if (rest <= 0) return 0;
  const n = await tx.$executeRaw`
    UPDATE reservations SET held_seconds = held_seconds + ${rest}
    WHERE id = ${reservationId}::uuid AND status = ${LIVE_RESERVATION} AND held_seconds + ${rest} <= booked_seconds`;
  return n === 1 ? 0 : rest;
}
