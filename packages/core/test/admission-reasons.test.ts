import { admit } from '../src/admission';
import {
  admittedIds,
  at,
  booking,
  flavor,
  HOUR_S,
  job,
  member,
  NOW,
  pendingOf,
  running,
  share,
  snap,
} from './admission-fixtures';

describe('reservations', () => {
  const active = booking({ id: 'b1', userId: 'owner', gpus: 2, from: -1, to: 3 });

  it("serve the owner's job without a new hold, even with no quota left", () => {
    const s = snap({
      pending: [job({ id: 'mine', userId: 'owner', gpus: 2, maxRuntimeSeconds: 2 * HOUR_S })],
      reservations: [active],
      memberships: [member('owner', 0)],
    });
    const r = admit(s, NOW);
    expect(r.admitted).toEqual([
      {
        jobId: 'mine',
        userId: 'owner',
        membershipId: 'm-owner',
        flavor: 'a100',
        gpus: 2,
        holdSeconds: 0,
        usesReservation: true,
        reservationId: 'b1',
        backfilled: false,
        expectedEnd: at(2),
      },
    ]);
  });

  it("keep the owner's job that outlasts the booking in the shared pool, with a hold", () => {
    const s = snap({
      pending: [job({ id: 'long', userId: 'owner', gpus: 2, maxRuntimeSeconds: 4 * HOUR_S })],
      reservations: [active],
    });
    const r = admit(s, NOW);
    expect(r.admitted).toEqual([
      expect.objectContaining({ jobId: 'long', usesReservation: false, reservationId: null, holdSeconds: 8 * HOUR_S }),
    ]);
  });

  it("fill a booking only up to its size; the owner's next job goes to the shared pool", () => {
    const s = snap({
      flavors: [flavor('a100', 8)],
      pending: [
        job({ id: 'first', userId: 'owner', gpus: 2, submittedAt: at(-3) }),
        job({ id: 'second', userId: 'owner', gpus: 2, submittedAt: at(-2) }),
      ],
      reservations: [booking({ id: 'b3', userId: 'owner', gpus: 3, from: -1, to: 3 })],
    });
    const r = admit(s, NOW);
    expect(r.admitted.map((d) => [d.jobId, d.reservationId, d.holdSeconds])).toEqual([
      ['first', 'b3', 0],
      ['second', null, 2 * HOUR_S],
    ]);
  });

  it("keep idle reserved GPUs from another user's job during the window", () => {
    const s = snap({
      pending: [job({ id: 'theirs', userId: 'other', gpus: 3, maxRuntimeSeconds: 2 * HOUR_S })],
      reservations: [active],
    });
    const p = pendingOf(admit(s, NOW), 'theirs');
    expect(p.reason).toBe('reservation');
    expect(p.message).toBe(
      'waiting for 3 a100 GPUs: 4 idle, but kept for a booking of 2 from 2026-11-28 11:00 UTC to ' +
        "2026-11-28 15:00 UTC that your job's run would overlap; estimated start in about 3.00 h (2026-11-28 15:00 UTC)",
    );
    expect(p.estimatedStart).toEqual(at(3));
  });

  it('do not let a job start now that would still run when a booking begins', () => {
    const future = booking({ id: 'b2', userId: 'owner', gpus: 4, from: 1, to: 5 });
    const s = snap({
      pending: [
        job({ id: 'overlaps', userId: 'other', maxRuntimeSeconds: 2 * HOUR_S }),
        job({ id: 'fits-before', userId: 'third', maxRuntimeSeconds: HOUR_S / 2 }),
      ],
      reservations: [future],
      shares: [share('other', 0), share('third', 1)],
    });
    const r = admit(s, NOW);
    expect(admittedIds(r)).toEqual(['fits-before']);
    expect(pendingOf(r, 'overlaps')).toMatchObject({ reason: 'reservation', estimatedStart: at(5) });
  });

  it("give the owner's waiting job the booking's start as its estimate", () => {
    const future = booking({ id: 'b2', userId: 'owner', gpus: 4, from: 1, to: 5 });
    const s = snap({
      running: [running({ id: 'r', userId: 'x', gpus: 4, endsInHours: 6 })],
      pending: [job({ id: 'mine', userId: 'owner', gpus: 2, maxRuntimeSeconds: 2 * HOUR_S })],
      reservations: [future],
    });
    expect(pendingOf(admit(s, NOW), 'mine').estimatedStart).toEqual(at(1));
  });
});

describe('pending reasons, positions and estimates', () => {
  it('queues capacity waits behind running jobs and the jobs ahead', () => {
    const s = snap({
      flavors: [flavor('a100', 2), flavor('h100', 1)],
      running: [running({ id: 'r1', userId: 'x', endsInHours: 1 }), running({ id: 'r2', userId: 'y', endsInHours: 3 })],
      pending: [
        job({ id: 'q1', userId: 'u1', maxRuntimeSeconds: 2 * HOUR_S, submittedAt: at(-5) }),
        job({ id: 'broke', userId: 'u2', submittedAt: at(-4) }),
        job({ id: 'q2', userId: 'u3', maxRuntimeSeconds: 2 * HOUR_S, submittedAt: at(-3) }),
        job({ id: 'q3', userId: 'u4', maxRuntimeSeconds: 2 * HOUR_S, submittedAt: at(-2) }),
        job({ id: 'h', userId: 'u5', flavor: 'h100', submittedAt: at(-1) }),
      ],
      memberships: [member('u2', 0)],
    });
    const r = admit(s, NOW);
    expect(admittedIds(r)).toEqual(['h']);
    expect(r.pending.map((p) => [p.jobId, p.reason, p.position, p.estimatedStart])).toEqual([
      ['q1', 'capacity', 1, at(1)],
      ['broke', 'quota', 2, null],
      ['q2', 'fair-share', 3, at(3)],
      ['q3', 'fair-share', 4, at(3)],
    ]);
  });

  it('keeps reasons and messages stable from one pass to the next while nothing changes', () => {
    const pending = ['a', 'b', 'c', 'd'].map((id, i) => job({ id, userId: `u-${id}`, submittedAt: at(-4 + i) }));
    const first = admit(snap({ flavors: [flavor('a100', 2)], pending }), NOW);
    expect(admittedIds(first)).toEqual(['a', 'b']);
    // The next pass sees a and b running and c, d still queued: the caller has nothing to rewrite.
    const second = admit(
      snap({
        flavors: [flavor('a100', 2)],
        running: first.admitted.map((d) =>
          running({
            id: d.jobId,
            userId: d.userId,
            endsInHours: (d.expectedEnd.getTime() - NOW.getTime()) / 3_600_000,
          }),
        ),
        pending: pending.slice(2),
      }),
      NOW,
    );
    expect(second.pending).toEqual(first.pending);
    expect(second.pending.map((p) => p.reason)).toEqual(['capacity', 'fair-share']);
  });

  it('explains jobs that can never start', () => {
    const s = snap({
      pending: [job({ id: 'huge', userId: 'u', gpus: 8 }), job({ id: 'nowhere', userId: 'u', flavor: 'tpu' })],
    });
    const r = admit(s, NOW);
    expect(pendingOf(r, 'huge')).toEqual({
      jobId: 'huge',
      reason: 'capacity',
      message: 'needs 8 a100 GPUs but only 4 exist; ask for fewer GPUs',
      position: 1,
      estimatedStart: null,
    });
    expect(pendingOf(r, 'nowhere')).toEqual({
      jobId: 'nowhere',
      reason: 'capacity',
      message: 'there are no GPUs of flavor "tpu"',
      position: 1,
      estimatedStart: null,
    });
  });

  it('treats GPUs in use by no listed job as busy with no known end', () => {
    const s = snap({ flavors: [flavor('a100', 4, 3)], pending: [job({ id: 'two', userId: 'u', gpus: 2 })] });
    expect(pendingOf(admit(s, NOW), 'two')).toMatchObject({ reason: 'capacity', estimatedStart: null });
  });

  it('assumes an overdue running job ends any moment', () => {
    const s = snap({
      flavors: [flavor('a100', 1)],
      running: [running({ id: 'late', userId: 'x', endsInHours: -1 })],
      pending: [job({ id: 'j', userId: 'u' })],
    });
    const p = pendingOf(admit(s, NOW), 'j');
    expect(p.estimatedStart).toEqual(new Date(NOW.getTime() + 1));
    expect(p.message).toContain('estimated start any moment now');
  });
});
