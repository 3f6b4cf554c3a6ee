import type { Occupant } from './heap';
import type { AdmissionSnapshot, FlavorState } from './snapshot';

/**
 * The GPUs of one flavor over time, as one pass sees them. Two kinds of capacity:
 *
 * - the shared pool, used by every job that does not run in a reservation. Its occupants are the running jobs and
 *   the jobs admitted in this pass, each busy until its latest end (start + max runtime — the scheduler stops a job
 *   there, so the estimate is an upper bound);
 * - bookings (reservations): during `[start, end)` a booking's GPUs serve only its owner's jobs, whether the owner
 *   uses them or not.
 *
 * A shared-pool job running over `[t, t + runtime)` fits when, at every moment of that interval,
 * `occupied(s) + reserved(s) + gpus ≤ capacity − busyUnknown`. Occupancy only falls over time (no job is admitted
 * into the future) and `reserved` only steps up at a booking's start, so it is enough to check `t` itself and every
 * booking start inside the interval (`room`). Checking future bookings is what keeps a booking's GPUs free for its
 * owner: a job that would still run when the booking starts is admitted only if the GPUs left outside the booking
 * suffice.
 */

export interface Booking {
  id: string;
  userId: string;
  gpus: number;
  start: number;
  end: number;
  /** Reserved GPUs taken by the owner's jobs now (running and admitted in this pass). */
  usedNow: number;
}

export class FlavorPool {
  /** GPUs not busy with an unknown end: the most the shared pool and bookings can ever offer. */
  readonly base: number;
  /** Bookings that have not ended, by start time. */
  readonly bookings: Booking[];
  /** Shared-pool occupants (all end after now), including this pass's admissions. */
  readonly occupants: Occupant[] = [];
  occupiedNow = 0;
  private reservedNowCache = 0;
  private nextFutureStart = Number.POSITIVE_INFINITY;
  private readonly activeOwners = new Set<string>();

  constructor(
    readonly flavor: FlavorState,
    readonly now: number,
    readonly busyUnknown: number,
    bookings: Booking[],
  ) {
    this.base = flavor.capacity - busyUnknown;
    this.bookings = bookings.sort((a, b) => a.start - b.start || a.end - b.end);
  }

  get name(): string {
    return this.flavor.name;
  }

  get capacity(): number {
    return this.flavor.capacity;
  }

  addOccupant(o: Occupant): void {
    this.occupants.push(o);
    this.occupiedNow += o.gpus;
  }

  /** Called once the running jobs are in: caches what does not change during the pass. */
  seal(): void {
    this.reservedNowCache = this.reservedAt(this.now);
    for (const b of this.bookings) {
      if (b.start > this.now) this.nextFutureStart = Math.min(this.nextFutureStart, b.start);
      else this.activeOwners.add(b.userId);
    }
  }

  /** GPUs kept for bookings at time `t`. */
  reservedAt(t: number): number {
    let sum = 0;
    for (const b of this.bookings) {
      if (b.start > t) break;
      if (t < b.end) sum += b.gpus;
    }
    return sum;
  }

  /** The earliest booking end after `t` (when reserved capacity can come back), or Infinity. */
  nextBookingEndAfter(t: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const b of this.bookings) if (b.end > t && b.end < next) next = b.end;
    return next;
  }

  /**
   * Shared-pool GPUs left for a job running over `[t, end)`: the minimum over `t` and the booking starts inside
   * the interval of `base − occupied(s) − reserved(s)`. `occAt(s)` is the shared-pool occupancy at `s ≥ t`.
   */
  room(t: number, end: number, occAt: (s: number) => number): number {
    let min = this.base - occAt(t) - this.reservedAt(t);
    for (const b of this.bookings) {
      if (b.start <= t) continue;
      if (b.start >= end) break;
      const r = this.base - occAt(b.start) - this.reservedAt(b.start);
      if (r < min) min = r;
    }
    return min;
  }

  /** Shared-pool GPUs free now, not counting future bookings (may be negative when bookings oversubscribe). */
  generalFreeNow(): number {
    return this.base - this.occupiedNow - this.reservedNowCache;
  }

  /** GPUs physically idle now, bookings or not. */
  physicalFreeNow(): number {
    let inBookings = 0;
    for (const b of this.bookings) if (b.start <= this.now) inBookings += b.usedNow;
    return this.base - this.occupiedNow - inBookings;
  }

  /** Whether a shared-pool job of `gpus` GPUs that ends by `end` fits now, without taking any booking's GPUs. */
  fitsNow(gpus: number, end: number): boolean {
    if (this.generalFreeNow() < gpus) return false;
    if (end <= this.nextFutureStart) return true;
    const occ = this.occupants;
    const now = this.now;
    const occupiedNow = this.occupiedNow;
    return this.room(now, end, (s) => (s === now ? occupiedNow : occupiedAt(occ, s))) >= gpus;
  }

  /**
   * The owner's booking, active now, with room for `gpus` until `end` — and as many GPUs physically idle (a booking
   * made while the flavor was oversubscribed must not push it over capacity).
   */
  bookingFor(userId: string, gpus: number, end: number): Booking | null {
    if (!this.activeOwners.has(userId) || this.physicalFreeNow() < gpus) return null;
    for (const b of this.bookings) {
      if (b.start > this.now) break;
      if (b.userId === userId && end <= b.end && b.gpus - b.usedNow >= gpus) return b;
    }
    return null;
  }

  /** The owner's future booking that could hold a job of `gpus` GPUs and `runtimeMs` whole. */
  futureBookingFor(userId: string, gpus: number, runtimeMs: number): Booking | null {
    for (const b of this.bookings) {
      if (b.start > this.now && b.userId === userId && b.gpus >= gpus && b.end - b.start >= runtimeMs) return b;
    }
    return null;
  }

  /** The first booking that overlaps `[t, end)`. */
  bookingOverlapping(t: number, end: number): Booking | null {
    for (const b of this.bookings) if (b.start < end && t < b.end) return b;
    return null;
  }
}

/** Shared-pool GPUs still busy at `s` (occupants ending after `s`). */
export function occupiedAt(occupants: readonly Occupant[], s: number): number {
  let sum = 0;
  for (const o of occupants) if (o.end > s) sum += o.gpus;
  return sum;
}

export interface Pools {
  pools: Map<string, FlavorPool>;
  /** Running jobs that use their owner's booking (they count neither in the shared pool nor the user cap). */
  inBooking: Set<string>;
}

/**
 * Builds the flavors' pools from the snapshot. A running job past its expected end is assumed to end any moment
 * (1 ms from now). A running job that uses its booking takes booking GPUs; if it may outlast the booking it is
 * also counted in the shared pool (double-counted now, which is conservative, so that it is not forgotten after
 * the booking ends).
 */
export function buildPools(snapshot: AdmissionSnapshot, now: number): Pools {
  const bookingsByFlavor = new Map<string, Booking[]>();
  for (const r of snapshot.reservations) {
    const start = r.start.getTime();
    const end = r.end.getTime();
    if (end <= now || end <= start || r.gpus <= 0) continue;
    let list = bookingsByFlavor.get(r.flavor);
    if (!list) {
      list = [];
      bookingsByFlavor.set(r.flavor, list);
    }
    list.push({ id: r.id, userId: r.userId, gpus: r.gpus, start, end, usedNow: 0 });
  }
  const runningGpus = new Map<string, number>();
  for (const j of snapshot.running) runningGpus.set(j.flavor, (runningGpus.get(j.flavor) ?? 0) + j.gpus);

  const pools = new Map<string, FlavorPool>();
  for (const f of snapshot.flavors) {
    const busyUnknown = Math.max(0, f.inUse - (runningGpus.get(f.name) ?? 0));
    pools.set(f.name, new FlavorPool(f, now, busyUnknown, bookingsByFlavor.get(f.name) ?? []));
  }

  const inBooking = new Set<string>();
  for (const j of snapshot.running) {
    const pool = pools.get(j.flavor);
    if (!pool) continue;
    const end = Math.max(j.expectedEnd.getTime(), now + 1);
    const b = j.reservationId ? pool.bookings.find((x) => x.id === j.reservationId) : undefined;
    if (b && b.userId === j.userId && b.start <= now) {
      const take = Math.min(j.gpus, b.gpus - b.usedNow);
      b.usedNow += take;
      if (take === j.gpus) inBooking.add(j.id);
      if (take < j.gpus) pool.addOccupant({ end, gpus: j.gpus - take });
      else if (end > b.end) pool.addOccupant({ end, gpus: j.gpus });
      continue;
    }
    pool.addOccupant({ end, gpus: j.gpus });
  }
  for (const p of pools.values()) p.seal();
  return { pools, inBooking };
}
