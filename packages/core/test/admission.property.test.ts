import fc from 'fast-check';
import {
  type AdmissionResult,
  type AdmissionSnapshot,
  admissionOrder,
  admit,
  type PendingJob,
  type Reservation,
  type RunningJob,
  userCapOf,
} from '../src/admission';
import { at, HOUR_S, NOW, POLICY } from './admission-fixtures';

/**
 * Random snapshots: up to 3 flavors (some GPUs busy with no known end), running jobs that fit, bookings around now
 * (active and future, some oversubscribing), memberships with random balances, caps with a per-group override,
 * and up to 30 pending jobs (some for an unknown flavor, some larger than any flavor). Times are in quarter hours.
 */
const USERS = ['u0', 'u1', 'u2', 'u3', 'u4'];
const GROUPS = ['g0', 'g1'];
const FLAVORS = ['a10g', 'a100', 'h100'];
const q = (quarters: number): Date => at(quarters / 4);

const arbSnapshot: fc.Arbitrary<AdmissionSnapshot> = fc
  .record({
    flavors: fc.array(
      fc.record({ capacity: fc.integer({ min: 0, max: 10 }), unknown: fc.integer({ min: 0, max: 2 }) }),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
    running: fc.array(
      fc.record({
        user: fc.constantFrom(...USERS),
        group: fc.constantFrom(...GROUPS),
        flavor: fc.nat(2),
        gpus: fc.integer({ min: 1, max: 4 }),
        endQ: fc.integer({ min: -8, max: 40 }),
        inBooking: fc.boolean(),
      }),
      { maxLength: 10 },
    ),
    bookings: fc.array(
      fc.record({
        user: fc.constantFrom(...USERS),
        flavor: fc.nat(2),
        gpus: fc.integer({ min: 1, max: 6 }),
        startQ: fc.oneof(fc.integer({ min: -12, max: 0 }), fc.integer({ min: 1, max: 24 })),
        lenQ: fc.integer({ min: 1, max: 24 }),
      }),
      { maxLength: 5 },
    ),
    balances: fc.array(
      fc.record({
        grantedQ: fc.integer({ min: 0, max: 160 }),
        heldFrac: fc.double({ min: 0, max: 1, noNaN: true }),
        usedFrac: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      { minLength: USERS.length * GROUPS.length, maxLength: USERS.length * GROUPS.length },
    ),
    pending: fc.array(
      fc.record({
        user: fc.constantFrom(...USERS),
        group: fc.constantFrom(...GROUPS),
        flavor: fc.nat(3),
        gpus: fc.constantFrom(1, 1, 2, 2, 4, 8, 12),
        runtimeQ: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 32 })),
        priority: fc.integer({ min: 0, max: 2 }),
        submittedQ: fc.integer({ min: -40, max: 0 }),
      }),
      { maxLength: 30 },
    ),
    shares: fc.array(
      fc.record({ usageH: fc.integer({ min: 0, max: 100 }), weight: fc.constantFrom(0.5, 1, 2), agoH: fc.nat(500) }),
      { minLength: USERS.length, maxLength: USERS.length },
    ),
    /** Send half the pending jobs to the owners of active bookings, sized to fit the booking's window. */
    focusBookings: fc.boolean(),
    cap: fc.integer({ min: 1, max: 8 }),
    g1Cap: fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
  })
  .map((r): AdmissionSnapshot => {
    const flavors = r.flavors.map((f, i) => ({
      name: FLAVORS[i]!,
      capacity: f.capacity,
      inUse: 0,
      rateMicrosPerGpuHour: 1_000_000,
    }));
    const reservations: Reservation[] = r.bookings
      .filter((b) => b.flavor < flavors.length)
      .map((b, i) => ({
        id: `b${i}`,
        userId: b.user,
        flavor: FLAVORS[b.flavor]!,
        gpus: b.gpus,
        start: q(b.startQ),
        end: q(b.startQ + b.lenQ),
      }));
    const busy = new Map<string, number>();
    const bookingUse = new Map<string, number>();
    const running: RunningJob[] = [];
    r.running.forEach((j, i) => {
      const f = flavors[j.flavor];
      if (!f || (busy.get(f.name) ?? 0) + j.gpus > f.capacity) return;
      busy.set(f.name, (busy.get(f.name) ?? 0) + j.gpus);
      const end = q(j.endQ);
      const b = j.inBooking
        ? reservations.find(
            (x) =>
              x.userId === j.user &&
              x.flavor === f.name &&
              x.start <= NOW &&
              end <= x.end &&
              (bookingUse.get(x.id) ?? 0) + j.gpus <= x.gpus,
          )
        : undefined;
      if (b) bookingUse.set(b.id, (bookingUse.get(b.id) ?? 0) + j.gpus);
      running.push({
        id: `r${i}`,
        userId: j.user,
        groupId: j.group,
        flavor: f.name,
        gpus: j.gpus,
        expectedEnd: end,
        reservationId: b?.id ?? null,
      });
    });
    r.flavors.forEach((f, i) => {
      const fl = flavors[i]!;
      fl.inUse = Math.min(fl.capacity, (busy.get(fl.name) ?? 0) + f.unknown);
    });
    const memberships = USERS.flatMap((u, ui) =>
      GROUPS.map((g, gi) => {
        const b = r.balances[ui * GROUPS.length + gi]!;
        const granted = b.grantedQ * 900;
        const held = Math.floor(granted * b.heldFrac);
        const used = Math.floor((granted - held) * b.usedFrac);
        return { id: `m-${u}-${g}`, grantedSeconds: granted, heldSeconds: held, usedSeconds: used };
      }),
    );
    const active = reservations.filter((b) => b.start <= NOW && b.end > NOW);
    const pending: PendingJob[] = r.pending.map((p0, i) => {
      const b = r.focusBookings && i % 2 === 0 ? active[i % Math.max(1, active.length)] : undefined;
      const left = b ? Math.floor((b.end.getTime() - nowMs) / 900_000) : 0;
      const p = b
        ? {
            ...p0,
            user: b.userId,
            flavor: FLAVORS.indexOf(b.flavor),
            gpus: Math.min(p0.gpus, b.gpus),
            runtimeQ: Math.max(1, Math.min(p0.runtimeQ, left)),
          }
        : p0;
      return {
        id: `j${String(i).padStart(2, '0')}`,
        userId: p.user,
        membershipId: `m-${p.user}-${p.group}`,
        groupId: p.group,
        flavor: p.flavor === 3 ? 'tpu' : FLAVORS[p.flavor]!,
        gpus: p.gpus,
        holdSeconds: p.gpus * p.runtimeQ * 900,
        priority: p.priority,
        submittedAt: q(p.submittedQ),
        maxRuntimeSeconds: p.runtimeQ * 900,
      };
    });
    const shares = USERS.map((u, i) => {
      const s = r.shares[i]!;
      return { userId: u, weight: s.weight, usage: { value: s.usageH * HOUR_S, at: at(-s.agoH) } };
    });
    return {
      pending,
      memberships,
      flavors,
      running,
      reservations,
      shares,
      policy: {
        ...POLICY,
        defaultMaxRunningGpusPerUser: r.cap,
        ...(r.g1Cap === undefined ? {} : { maxRunningGpusPerUserByGroup: { g1: r.g1Cap } }),
      },
    };
  });

const RUNS = { numRuns: 400 };
const nowMs = NOW.getTime();
const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
const generalDecisions = (r: AdmissionResult) => r.admitted.filter((d) => !d.usesReservation);

function liveBookings(s: AdmissionSnapshot, flavorName: string): Reservation[] {
  return s.reservations.filter(
    (b) => b.flavor === flavorName && b.end.getTime() > nowMs && b.end > b.start && b.gpus > 0,
  );
}

describe('admission pass (properties over random snapshots)', () => {
  it('gives every pending job exactly one outcome, with positions 1..n per flavor', () => {
    fc.assert(
      fc.property(arbSnapshot, (s) => {
        const r = admit(s, NOW);
        const ids = [...r.admitted.map((d) => d.jobId), ...r.pending.map((p) => p.jobId)].sort();
        expect(ids).toEqual(s.pending.map((j) => j.id).sort());
        const byId = new Map(s.pending.map((j) => [j.id, j]));
        const positions = new Map<string, number[]>();
        for (const p of r.pending) {
          const f = byId.get(p.jobId)!.flavor;
          positions.set(f, [...(positions.get(f) ?? []), p.position]);
          expect(p.message.length).toBeGreaterThan(10);
          if (p.estimatedStart) expect(p.estimatedStart.getTime()).toBeGreaterThanOrEqual(nowMs);
          if (p.reason === 'quota' && !s.reservations.some((b) => b.userId === byId.get(p.jobId)!.userId)) {
            expect(p.estimatedStart).toBeNull();
          }
        }
        for (const list of positions.values()) expect(list).toEqual(list.map((_, i) => i + 1));
      }),
      RUNS,
    );
  });

  it('never over-admits GPUs, quota or a user cap in one pass', () => {
    fc.assert(
      fc.property(arbSnapshot, (s) => {
        const r = admit(s, NOW);
        for (const f of s.flavors) {
          const runningGpus = sum(s.running.filter((j) => j.flavor === f.name).map((j) => j.gpus));
          const idle = Math.max(0, f.capacity - Math.max(f.inUse, runningGpus));
          expect(sum(r.admitted.filter((d) => d.flavor === f.name).map((d) => d.gpus))).toBeLessThanOrEqual(idle);
        }
        for (const m of s.memberships) {
          const free = Math.max(0, m.grantedSeconds - m.heldSeconds - m.usedSeconds);
          const held = sum(r.admitted.filter((d) => d.membershipId === m.id).map((d) => d.holdSeconds));
          expect(held).toBeLessThanOrEqual(free);
        }
        const jobs = new Map(s.pending.map((j) => [j.id, j]));
        for (const u of USERS) {
          for (const g of GROUPS) {
            const cap = userCapOf(s.policy, g);
            const before = sum(
              s.running.filter((j) => j.userId === u && j.groupId === g && !j.reservationId).map((j) => j.gpus),
            );
            const added = sum(
              generalDecisions(r)
                .filter((d) => d.userId === u && jobs.get(d.jobId)!.groupId === g)
                .map((d) => d.gpus),
            );
            if (added > 0) expect(before + added).toBeLessThanOrEqual(cap);
          }
        }
        for (const d of r.admitted) expect(d.holdSeconds).toBe(d.usesReservation ? 0 : jobs.get(d.jobId)!.holdSeconds);
      }),
      RUNS,
    );
  });

  it("never gives a booking's GPUs to another user's job during its window", () => {
    fc.assert(
      fc.property(arbSnapshot, (s) => {
        const r = admit(s, NOW);
        for (const d of r.admitted.filter((x) => x.usesReservation)) {
          const b = s.reservations.find((x) => x.id === d.reservationId)!;
          expect(b.userId).toBe(d.userId);
          expect(b.flavor).toBe(d.flavor);
          expect(b.start.getTime()).toBeLessThanOrEqual(nowMs);
          expect(d.expectedEnd.getTime()).toBeLessThanOrEqual(b.end.getTime());
        }
        for (const b of s.reservations) {
          const inside = sum(s.running.filter((j) => j.reservationId === b.id).map((j) => j.gpus));
          const added = sum(r.admitted.filter((d) => d.reservationId === b.id).map((d) => d.gpus));
          expect(inside + added).toBeLessThanOrEqual(b.gpus);
        }
        // At now and at every future booking start, the shared pool (running + admitted) plus the GPUs kept for
        // bookings fit the flavor — whenever a job admitted in this pass is still running then.
        for (const f of s.flavors) {
          const bookings = liveBookings(s, f.name);
          const shared = s.running.filter((j) => j.flavor === f.name && !j.reservationId);
          const unknown = Math.max(0, f.inUse - sum(s.running.filter((j) => j.flavor === f.name).map((j) => j.gpus)));
          const admitted = generalDecisions(r).filter((d) => d.flavor === f.name);
          const times = [nowMs, ...bookings.map((b) => b.start.getTime()).filter((t) => t > nowMs)];
          for (const t of times) {
            const newAtT = admitted.filter((d) => d.expectedEnd.getTime() > t);
            if (newAtT.length === 0) continue;
            const old = sum(shared.filter((j) => Math.max(j.expectedEnd.getTime(), nowMs + 1) > t).map((j) => j.gpus));
            const reserved = sum(
              bookings.filter((b) => b.start.getTime() <= t && t < b.end.getTime()).map((b) => b.gpus),
            );
            expect(old + sum(newAtT.map((d) => d.gpus)) + reserved + unknown).toBeLessThanOrEqual(f.capacity);
          }
        }
      }),
      RUNS,
    );
  });

  it("never delays the head of a flavor's queue by backfilling", () => {
    fc.assert(
      fc.property(arbSnapshot, (s) => {
        const r = admit(s, NOW);
        const order = admissionOrder(s, NOW);
        const info = new Map(r.pending.map((p) => [p.jobId, p]));
        for (const f of s.flavors) {
          const idx = order.findIndex((j) => {
            const p = info.get(j.id);
            return (
              j.flavor === f.name && p && p.reason !== 'quota' && p.reason !== 'user-cap' && p.estimatedStart !== null
            );
          });
          if (idx < 0) continue;
          const head = order[idx]!;
          const alone = admit({ ...s, pending: order.slice(0, idx + 1) }, NOW);
          const headAlone = alone.pending.find((p) => p.jobId === head.id);
          expect(headAlone?.estimatedStart).toEqual(info.get(head.id)!.estimatedStart);
        }
      }),
      RUNS,
    );
  });

  it('does not depend on the order of the input', () => {
    fc.assert(
      fc.property(arbSnapshot, fc.integer(), (s, seed) => {
        const shuffled = s.pending.slice();
        let x = seed >>> 0;
        for (let i = shuffled.length - 1; i > 0; i--) {
          x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
          const k = x % (i + 1);
          [shuffled[i], shuffled[k]] = [shuffled[k]!, shuffled[i]!];
        }
        expect(admit({ ...s, pending: shuffled }, NOW)).toEqual(admit(s, NOW));
      }),
      { numRuns: 100 },
    );
  });
});
