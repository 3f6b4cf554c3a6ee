import type { AdmissionPolicy, AdmissionSnapshot, PendingInfo } from '@gpulab/core';
import type { Db } from './client';
import { LIVE_RESERVATION } from './reservations';

/**
 * Reads what one admission pass needs from Postgres (the engine in @gpulab/core decides in memory; the scheduler
 * commits each decision with a conditional UPDATE). Capacity comes from the launcher (slots in local mode, node
 * allocatable in Kubernetes); prices from the flavor table.
 */
export async function loadAdmissionSnapshot(
  db: Db,
  o: {
    capacity: Readonly<Record<string, number>>;
    policy: AdmissionPolicy;
    now: Date;
    limit?: number;
    /** Also load this user's membership and share (a quote for a job not submitted yet). */
    also?: { userId: string; membershipId: string };
  },
): Promise<AdmissionSnapshot> {
  const [queued, holding, reservations, flavors, groups] = await Promise.all([
    db.job.findMany({
      where: { status: 'QUEUED' },
      orderBy: [{ priority: 'desc' }, { createdAt: 'asc' }, { id: 'asc' }],
      take: o.limit ?? 20_000,
      select: {
        id: true,
        userId: true,
        membershipId: true,
        groupId: true,
        flavor: true,
        gpus: true,
        priority: true,
        createdAt: true,
        maxRuntimeSeconds: true,
      },
    }),
    db.job.findMany({
      where: { status: { in: ['ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING'] } },
      select: {
        id: true,
        userId: true,
        groupId: true,
        flavor: true,
        gpus: true,
        maxRuntimeSeconds: true,
        status: true,
        startedAt: true,
        reservationId: true,
      },
    }),
    db.reservation.findMany({ where: { status: LIVE_RESERVATION, endAt: { gt: o.now } } }),
    db.flavor.findMany(),
    db.group.findMany({
      where: { maxRunningGpusPerUser: { not: null } },
      select: { id: true, maxRunningGpusPerUser: true },
    }),
  ]);
  const membershipIds = [...new Set([...queued.map((j) => j.membershipId), ...(o.also ? [o.also.membershipId] : [])])];
  const userIds = [...new Set([...queued.map((j) => j.userId), ...(o.also ? [o.also.userId] : [])])];
  const [memberships, users, usage] = await Promise.all([
    db.membership.findMany({
      where: { id: { in: membershipIds } },
      select: { id: true, grantedSeconds: true, heldSeconds: true, usedSeconds: true },
    }),
    db.user.findMany({ where: { id: { in: userIds } }, select: { id: true, shareWeight: true } }),
    decayedUsageByUser(db, userIds, o.now, o.policy.halfLifeSeconds),
  ]);
  const rates = new Map(flavors.map((f) => [f.name, Number(f.rateMicros)]));
  const inUse = new Map<string, number>();
  for (const j of holding) inUse.set(j.flavor, (inUse.get(j.flavor) ?? 0) + j.gpus);
  const byGroup: Record<string, number> = { ...o.policy.maxRunningGpusPerUserByGroup };
  for (const g of groups) if (g.maxRunningGpusPerUser !== null) byGroup[g.id] = g.maxRunningGpusPerUser;

  return {
    pending: queued.map((j) => ({
      id: j.id,
      userId: j.userId,
      membershipId: j.membershipId,
      groupId: j.groupId,
      flavor: j.flavor,
      gpus: j.gpus,
      holdSeconds: j.maxRuntimeSeconds * j.gpus,
      priority: j.priority,
      submittedAt: j.createdAt,
      maxRuntimeSeconds: j.maxRuntimeSeconds,
    })),
    memberships,
    flavors: Object.entries(o.capacity).map(([name, capacity]) => ({
      name,
      capacity,
      inUse: inUse.get(name) ?? 0,
      rateMicrosPerGpuHour: rates.get(name) ?? 0,
    })),
    running: holding.map((j) => ({
      id: j.id,
      userId: j.userId,
      groupId: j.groupId,
      flavor: j.flavor,
      gpus: j.gpus,
      // latest end: a running job is stopped at its max runtime; one not running yet has all of it ahead
      expectedEnd: new Date(
        (j.status === 'RUNNING' && j.startedAt ? j.startedAt : o.now).getTime() + j.maxRuntimeSeconds * 1000,
      ),
      reservationId: j.reservationId,
    })),
    reservations: reservations.map((r) => ({
      id: r.id,
      userId: r.userId,
      flavor: r.flavor,
      gpus: r.gpus,
      start: r.startAt,
      end: r.endAt,
    })),
    shares: users.map((u) => ({
      userId: u.id,
      weight: u.shareWeight,
      usage: { value: usage.get(u.id) ?? 0, at: o.now },
    })),
    policy: { ...o.policy, maxRunningGpusPerUserByGroup: byGroup },
  };
}

/**
 * Each user's GPU usage decayed to `now` with the half-life: every hourly cost row counts its GPU-seconds times
 * 2^(−age / half-life), its age measured from the middle of the charged part of its hour. Rows older than 20
 * half-lives (weight < 1e-6) are skipped. Computed from the ledger, so it survives restarts and needs no upkeep.
 */
export async function decayedUsageByUser(
  db: Db,
  userIds: readonly string[],
  now: Date,
  halfLifeSeconds: number,
): Promise<Map<string, number>> {
  if (userIds.length === 0) return new Map();
  const horizon = new Date(now.getTime() - 20 * halfLifeSeconds * 1000);
  const rows = await db.$queryRaw<{ user_id: string; usage: number }[]>`
    SELECT j.user_id, SUM(l.gpu_seconds * power(0.5::float8,
             GREATEST(0, EXTRACT(EPOCH FROM (${now}::timestamptz - (l.hour_start + interval '30 minutes'))))::float8
             / ${halfLifeSeconds}::float8))::float8 AS usage
    FROM cost_ledger l JOIN jobs j ON j.id = l.job_id
    WHERE j.user_id = ANY(${userIds as string[]}::uuid[]) AND l.hour_start > ${horizon}
    GROUP BY j.user_id`;
  return new Map(rows.map((r) => [r.user_id, Number(r.usage)]));
}

/**
 * Writes each waiting job's reason, sentence, queue position and estimated start in one statement, touching only
 * rows whose values changed and that are still QUEUED.
 */
export async function writePendingInfo(db: Db, infos: readonly PendingInfo[]): Promise<number> {
  if (infos.length === 0) return 0;
  const ids = infos.map((p) => p.jobId);
  const reasons = infos.map((p) => p.reason);
  const messages = infos.map((p) => p.message);
  const positions = infos.map((p) => p.position);
  const starts = infos.map((p) => p.estimatedStart?.toISOString() ?? null);
  return db.$executeRaw`
    UPDATE jobs j SET pending_reason = v.reason, pending_message = v.message, queue_position = v.position,
                      estimated_start_at = v.est
    FROM unnest(${ids}::uuid[], ${reasons}::text[], ${messages}::text[], ${positions}::int[], ${starts}::timestamptz[])
         AS v(id, reason, message, position, est)
    WHERE j.id = v.id AND j.status = 'QUEUED'
      AND (j.pending_reason IS DISTINCT FROM v.reason OR j.pending_message IS DISTINCT FROM v.message
           OR j.queue_position IS DISTINCT FROM v.position OR j.estimated_start_at IS DISTINCT FROM v.est)`;
}
