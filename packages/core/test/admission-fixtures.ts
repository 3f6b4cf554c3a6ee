import type {
  AdmissionPolicy,
  AdmissionResult,
  AdmissionSnapshot,
  FlavorState,
  MembershipBalance,
  PendingInfo,
  PendingJob,
  Reservation,
  RunningJob,
  UserShare,
} from '../src/admission';

/** Fixed clock for every admission test. */
export const NOW = new Date('2026-11-28T12:00:00.000Z');
export const HOUR_S = 3600;
export const HOUR_MS = 3_600_000;
/** NOW + `hours`. */
export const at = (hours: number): Date => new Date(NOW.getTime() + hours * HOUR_MS);

export const POLICY: AdmissionPolicy = { halfLifeSeconds: 7 * 24 * HOUR_S, defaultMaxRunningGpusPerUser: 8 };

/** A pending job: 1 GPU of a100 for at most 1 h, holding gpus × hours, submitted an hour ago, in group g. */
export function job(p: Partial<PendingJob> & { id: string; userId: string }): PendingJob {
  const gpus = p.gpus ?? 1;
  const maxRuntimeSeconds = p.maxRuntimeSeconds ?? HOUR_S;
  return {
    membershipId: `m-${p.userId}`,
    groupId: 'g',
    flavor: 'a100',
    gpus,
    holdSeconds: gpus * maxRuntimeSeconds,
    priority: 0,
    submittedAt: at(-1),
    maxRuntimeSeconds,
    ...p,
  };
}

export function flavor(name: string, capacity: number, inUse = 0, rate = 2_000_000): FlavorState {
  return { name, capacity, inUse, rateMicrosPerGpuHour: rate };
}

export function running(p: Partial<RunningJob> & { id: string; userId: string; endsInHours: number }): RunningJob {
  const { endsInHours, ...rest } = p;
  return { groupId: 'g', flavor: 'a100', gpus: 1, expectedEnd: at(endsInHours), reservationId: null, ...rest };
}

export function booking(
  p: Partial<Reservation> & { id: string; userId: string; from: number; to: number },
): Reservation {
  const { from, to, ...rest } = p;
  return { flavor: 'a100', gpus: 1, start: at(from), end: at(to), ...rest };
}

export function member(userId: string, grantedHours: number, heldHours = 0, usedHours = 0): MembershipBalance {
  return {
    id: `m-${userId}`,
    grantedSeconds: grantedHours * HOUR_S,
    heldSeconds: heldHours * HOUR_S,
    usedSeconds: usedHours * HOUR_S,
  };
}

export function share(userId: string, usageHours: number, weight = 1, hoursAgo = 0): UserShare {
  return { userId, weight, usage: { value: usageHours * HOUR_S, at: at(-hoursAgo) } };
}

/**
 * A snapshot with defaults: an a100 flavor of 4 idle GPUs, every pending job's membership granted 1000 h (unless
 * listed), the default policy. Flavors' `inUse` defaults to the running jobs' GPUs.
 */
export function snap(p: Partial<AdmissionSnapshot> & { pending: PendingJob[] }): AdmissionSnapshot {
  const runningJobs = p.running ?? [];
  const flavors = (p.flavors ?? [flavor('a100', 4)]).map((f) => ({
    ...f,
    inUse: f.inUse || runningJobs.filter((r) => r.flavor === f.name).reduce((s, r) => s + r.gpus, 0),
  }));
  const memberships = [...(p.memberships ?? [])];
  for (const j of p.pending) {
    if (!memberships.some((m) => m.id === j.membershipId)) {
      memberships.push({ id: j.membershipId, grantedSeconds: 1000 * HOUR_S, heldSeconds: 0, usedSeconds: 0 });
    }
  }
  return {
    pending: p.pending,
    memberships,
    flavors,
    running: runningJobs,
    reservations: p.reservations ?? [],
    shares: p.shares ?? [],
    policy: p.policy ?? POLICY,
  };
}

export const admittedIds = (r: AdmissionResult): string[] => r.admitted.map((d) => d.jobId);

export function pendingOf(r: AdmissionResult, id: string): PendingInfo {
  const p = r.pending.find((x) => x.jobId === id);
  if (!p) throw new Error(`job ${id} is not pending (admitted: ${admittedIds(r).join(', ')})`);
  return p;
}
