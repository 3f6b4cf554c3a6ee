import { buildPools, type FlavorPool } from './capacity';
import { StartSimulator } from './estimate';
import type { Occupant } from './heap';
import { type BlockDetail, describe, isNever, reasonOf } from './messages';
import { admissionOrder } from './order';
import {
  type AdmissionDecision,
  type AdmissionResult,
  type AdmissionSnapshot,
  type PendingInfo,
  type PendingJob,
  userCapOf,
} from './snapshot';

/**
 * One admission pass (Kueue style: reserve in memory, the caller commits). Walks the pending jobs in admission
 * order (priority, fair share, submit time, id — see `admissionOrder`) and admits each job that
 *
 * 1. fits its owner's booking, if one is active now (then no quota is held again and no cap applies), or
 * 2. has quota (`free ≥ holdSeconds`), is under its owner's running-GPU cap in its group, and fits the flavor's
 *    shared pool now and for its whole max runtime without taking a booking's GPUs.
 *
 * Every admission is subtracted from the in-memory state at once, so one pass never over-admits GPUs, quota or
 * caps. Backfill (EASY): the first job of a flavor that does not fit becomes that flavor's head; its start is
 * estimated from the running jobs' ends (the "shadow" time) and the GPUs it leaves spare then (`extra`). A later
 * job that fits now is admitted only if it ends by the shadow time or uses no more than `extra` GPUs — so a
 * backfilled job never delays the head's estimated start.
 *
 * Every job not admitted gets a reason (quota, user-cap, or — for GPUs — capacity / reservation for the first job
 * of a flavor that waits and fair-share for the jobs behind it, see `classify`), a sentence with numbers, its
 * position in its flavor's queue and an estimated start (see `describeWaiting`).
 * O(n log n) for n pending jobs (the sort dominates); per job, the capacity checks cost O(bookings) and, only
 * when the job would overlap a future booking, O(capacity × bookings).
 */
export function admit(snapshot: AdmissionSnapshot, now: Date): AdmissionResult {
  return runAdmission(snapshot, now, null);
}

/**
 * `admit`, with pending information (the sentence is the costly part) built only for the job `describeOnly`
 * when it is given — what a quote needs. Every job is still decided and placed, so that job's outcome is the same.
 */
export function runAdmission(snapshot: AdmissionSnapshot, now: Date, describeOnly: string | null): AdmissionResult {
  const nowMs = now.getTime();
  const { pools, inBooking } = buildPools(snapshot, nowMs);
  const balances = new Map(snapshot.memberships.map((m) => [m.id, { ...m }]));
  const loads = userLoads(snapshot, inBooking);
  const heads = new Map<string, Head>();
  const waitingForGpus = new Map<string, number>();
  const admitted: AdmissionDecision[] = [];
  const waiting: Waiting[] = [];

  for (const job of admissionOrder(snapshot, now)) {
    const runtimeMs = job.maxRuntimeSeconds * 1000;
    const end = nowMs + runtimeMs;
    const pool = pools.get(job.flavor);
    if (!pool) {
      waiting.push({ job, detail: { kind: 'no-flavor', flavor: job.flavor } });
      continue;
    }
    if (job.gpus > pool.capacity) {
      waiting.push({ job, detail: { kind: 'too-big', flavor: job.flavor, gpus: job.gpus, capacity: pool.capacity } });
      continue;
    }
    const booking = pool.bookingFor(job.userId, job.gpus, end);
    if (booking) {
      booking.usedNow += job.gpus;
      admitted.push(decision(job, end, { reservationId: booking.id, backfilled: false }));
      continue;
    }
    const balance = balances.get(job.membershipId);
    if (!balance) {
      waiting.push({ job, detail: { kind: 'no-membership' } });
      continue;
    }
    const free = balance.grantedSeconds - balance.heldSeconds - balance.usedSeconds;
    if (free < job.holdSeconds) {
      waiting.push({
        job,
        detail: {
          kind: 'quota',
          need: job.holdSeconds,
          gpus: job.gpus,
          free,
          granted: balance.grantedSeconds,
          held: balance.heldSeconds,
          used: balance.usedSeconds,
        },
      });
      continue;
    }
    const cap = userCapOf(snapshot.policy, job.groupId);
    const load = loadOf(loads, job.userId, job.groupId);
    if (load.running + job.gpus > cap) {
      waiting.push({ job, detail: { kind: 'user-cap', cap, running: load.running, gpus: job.gpus }, cap, load });
      continue;
    }
    const head = heads.get(job.flavor);
    if (pool.fitsNow(job.gpus, end)) {
      const behindHead = head !== undefined;
      if (head && end > head.shadow) {
        if (job.gpus > head.extra) {
          waitingForGpus.set(job.flavor, (waitingForGpus.get(job.flavor) ?? 0) + 1);
          waiting.push({
            job,
            detail: {
              kind: 'backfill-protected',
              flavor: job.flavor,
              gpus: job.gpus,
              runtimeMs,
              headStart: head.shadow,
            },
          });
          continue;
        }
        head.extra -= job.gpus;
      }
      const occupant: Occupant = { end, gpus: job.gpus };
      pool.addOccupant(occupant);
      balance.heldSeconds += job.holdSeconds;
      load.running += job.gpus;
      load.ends.push(occupant);
      admitted.push(decision(job, end, { reservationId: null, backfilled: behindHead }));
      continue;
    }
    const ahead = waitingForGpus.get(job.flavor) ?? 0;
    waitingForGpus.set(job.flavor, ahead + 1);
    waiting.push({ job, detail: classify(pool, job, end, ahead) });
    if (!head) {
      const p = new StartSimulator(pool, pool.occupants, nowMs).place(job.gpus, runtimeMs);
      if (p) heads.set(job.flavor, { shadow: p.start, extra: p.room - job.gpus });
    }
  }

  return { admitted, pending: describeWaiting(waiting, pools, nowMs, describeOnly) };
}

interface Head {
  /** Estimated start of the flavor's first job that did not fit. */
  shadow: number;
  /** Shared-pool GPUs spare at the shadow time over the head's run once the head has started. */
  extra: number;
}

interface UserLoad {
  /** Shared-pool GPUs the user runs in the group (running + admitted in this pass). */
  running: number;
  ends: Occupant[];
}

interface Waiting {
  job: PendingJob;
  detail: BlockDetail;
  cap?: number;
  load?: UserLoad;
}

function decision(
  job: PendingJob,
  end: number,
  o: { reservationId: string | null; backfilled: boolean },
): AdmissionDecision {
  return {
    jobId: job.id,
    userId: job.userId,
    membershipId: job.membershipId,
    flavor: job.flavor,
    gpus: job.gpus,
    holdSeconds: o.reservationId ? 0 : job.holdSeconds,
    usesReservation: o.reservationId !== null,
    reservationId: o.reservationId,
    backfilled: o.backfilled,
    expectedEnd: new Date(end),
  };
}

/** Loads by user, then group. */
type Loads = Map<string, Map<string, UserLoad>>;

function loadOf(loads: Loads, userId: string, groupId: string): UserLoad {
  let byGroup = loads.get(userId);
  if (!byGroup) {
    byGroup = new Map();
    loads.set(userId, byGroup);
  }
  let l = byGroup.get(groupId);
  if (!l) {
    l = { running: 0, ends: [] };
    byGroup.set(groupId, l);
  }
  return l;
}

/** Each user's shared-pool GPUs per group from the running jobs (jobs in their owner's booking do not count). */
function userLoads(snapshot: AdmissionSnapshot, inBooking: ReadonlySet<string>): Loads {
  const loads: Loads = new Map();
  for (const j of snapshot.running) {
    if (inBooking.has(j.id)) continue;
    const l = loadOf(loads, j.userId, j.groupId);
    l.running += j.gpus;
    l.ends.push({ end: j.expectedEnd.getTime(), gpus: j.gpus });
  }
  return loads;
}

/** When the user's own jobs will have freed enough of their cap for `gpus` more (null: never). */
function capFreeAt(load: UserLoad, gpus: number, cap: number, now: number): number | null {
  if (gpus > cap) return null;
  let running = load.running;
  if (running + gpus <= cap) return now;
  const ends = load.ends.slice().sort((a, b) => a.end - b.end);
  for (const e of ends) {
    running -= e.gpus;
    if (running + gpus <= cap) return Math.max(e.end, now + 1);
  }
  return null;
}

/**
 * Why a shared-pool job does not fit now, as Slurm words it: a job behind other jobs waiting for the same flavor
 * waits for them (fair-share — they are ahead by priority or fair share); the first one waits either for idle GPUs
 * that are kept for a booking its run would overlap (reservation) or for GPUs to free up (capacity). A job keeps
 * its reason from one pass to the next while nothing changes, so the caller's "write only when changed" stays cheap.
 */
function classify(pool: FlavorPool, job: PendingJob, end: number, ahead: number): BlockDetail {
  if (ahead > 0) return { kind: 'behind', flavor: job.flavor, gpus: job.gpus, ahead };
  if (pool.physicalFreeNow() >= job.gpus) {
    const b = pool.bookingOverlapping(pool.now, end);
    if (b) {
      return {
        kind: 'reservation',
        flavor: job.flavor,
        gpus: job.gpus,
        idle: pool.physicalFreeNow(),
        booking: { gpus: b.gpus, start: b.start, end: b.end },
      };
    }
  }
  return { kind: 'capacity', flavor: job.flavor, gpus: job.gpus, free: pool.generalFreeNow(), capacity: pool.capacity };
}

/**
 * Positions and estimated starts, flavor by flavor in admission order: jobs held back by GPUs are placed in the
 * flavor's start-time simulation (so each estimate counts the jobs ahead); a job held back by its owner's cap is
 * probed (from when the owner's jobs free the cap) without holding up the queue; a job held back by quota has no
 * estimate. A job whose owner has a future booking that can hold it starts at that booking's start at the latest.
 */
function describeWaiting(
  waiting: readonly Waiting[],
  pools: Map<string, FlavorPool>,
  now: number,
  only: string | null,
): PendingInfo[] {
  const sims = new Map<string, StartSimulator>();
  const positions = new Map<string, number>();
  const out: PendingInfo[] = [];
  for (const w of waiting) {
    const { job, detail } = w;
    const position = (positions.get(job.flavor) ?? 0) + 1;
    positions.set(job.flavor, position);
    const pool = pools.get(job.flavor);
    let start: number | null = null;
    if (pool && !isNever(detail)) {
      const runtimeMs = job.maxRuntimeSeconds * 1000;
      let sim = sims.get(job.flavor);
      if (!sim) {
        sim = new StartSimulator(pool, pool.occupants, now);
        sims.set(job.flavor, sim);
      }
      if (detail.kind === 'user-cap') {
        const after = w.load && w.cap !== undefined ? capFreeAt(w.load, job.gpus, w.cap, now) : null;
        start = after === null ? null : (sim.probe(job.gpus, runtimeMs, after)?.start ?? null);
      } else if (detail.kind !== 'quota' && detail.kind !== 'no-membership') {
        start = sim.place(job.gpus, runtimeMs)?.start ?? null;
      }
      const booking = pool.futureBookingFor(job.userId, job.gpus, runtimeMs);
      if (booking && (start === null || booking.start < start)) start = booking.start;
    }
    if (only !== null && job.id !== only) continue;
    out.push({
      jobId: job.id,
      reason: reasonOf(detail),
      message: describe(detail, start, now),
      position,
      estimatedStart: start === null ? null : new Date(start),
    });
  }
  return out;
}
