import { GpulabError } from '@gpulab/core';
import type { Db, Tx } from './client';
import { balanceOf } from './quota';

/**
 * Instructors' quota operations inside a group's budget: grant, revoke (optionally forced) and move GPU-seconds.
 *
 * - Every operation takes the group row's lock first (`SELECT … FOR UPDATE`), so allocation changes of one group are
 *   serialized: a grant reads the sum of members' `granted_seconds` after the previous grant committed, and 20
 *   concurrent grants racing for the last hours can never together exceed the budget.
 * - Over budget is a 409 CONFLICT (not QUOTA_EXCEEDED, a 402 that means "your own quota does not cover this job or
 *   booking"): the instructor's request conflicts with the group's current allocation and succeeds once hours are
 *   revoked or the budget is raised. The message names the budget, what is granted so far and what was asked.
 * - Balances change only with `quota_entries` rows (actor, note), and never below zero: the table's CHECK
 *   (granted, held, used ≥ 0 and held + used ≤ granted) is the last line of defence, not the first.
 *
 * Lock order, to stay deadlock-free with the scheduler (admission: membership → job; settlement: job → membership):
 * group → the member's live jobs (forced revoke only) → membership(s), memberships in id order.
 */

/** Statuses of jobs that hold quota. */
export const HOLDING_STATUSES = ['ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING'] as const;

/** Admin operations may wait behind the scheduler's short transactions; more patience than Prisma's defaults. */
const TX = { maxWait: 15_000, timeout: 20_000 };

const h = (s: number) => (s / 3600).toFixed(2);

function checkSeconds(seconds: number): void {
  if (!Number.isSafeInteger(seconds) || seconds <= 0)
    throw new GpulabError('VALIDATION', 'seconds must be a positive whole number', { field: 'seconds' });
}

interface LockedMembership {
  id: string;
  group_id: string;
  email: string;
  granted_seconds: number;
  held_seconds: number;
  used_seconds: number;
}

/** Locks the group of a membership and returns it (budget, name). */
async function lockGroupOf(tx: Tx, membershipId: string) {
  const rows = await tx.$queryRaw<{ id: string; name: string; budget_seconds: number }[]>`
    SELECT g.id, g.name, g.budget_seconds FROM groups g
    WHERE g.id = (SELECT group_id FROM memberships WHERE id = ${membershipId}::uuid)
    FOR UPDATE OF g`;
  const g = rows[0];
  if (!g) throw new GpulabError('NOT_FOUND', `membership ${membershipId} not found`);
  return g;
}

async function lockMembership(tx: Tx, membershipId: string): Promise<LockedMembership> {
  const rows = await tx.$queryRaw<LockedMembership[]>`
    SELECT m.id, m.group_id, u.email, m.granted_seconds, m.held_seconds, m.used_seconds
    FROM memberships m JOIN users u ON u.id = m.user_id
    WHERE m.id = ${membershipId}::uuid FOR UPDATE OF m`;
  const m = rows[0];
  if (!m) throw new GpulabError('NOT_FOUND', `membership ${membershipId} not found`);
  return m;
}

const freeOf = (m: LockedMembership) => m.granted_seconds - m.held_seconds - m.used_seconds;

async function balance(tx: Tx, membershipId: string) {
  return balanceOf(
    await tx.membership.findUniqueOrThrow({
      where: { id: membershipId },
      select: { grantedSeconds: true, heldSeconds: true, usedSeconds: true },
    }),
  );
}

const withNote = (note: string | null | undefined, auto: string) => (note ? `${note} (${auto})` : auto);

export interface GrantInput {
  membershipId: string;
  seconds: number;
  actorId?: string | null;
  note?: string | null;
}

/** Grants seconds to a member within the group's budget; 409 CONFLICT naming the numbers when over it. */
export async function grantQuota(db: Db, g: GrantInput) {
  checkSeconds(g.seconds);
  return db.$transaction(async (tx) => {
    const group = await lockGroupOf(tx, g.membershipId);
    const [sum] = await tx.$queryRaw<{ granted: bigint }[]>`
      SELECT COALESCE(SUM(granted_seconds), 0)::bigint AS granted FROM memberships WHERE group_id = ${group.id}::uuid`;
    const granted = Number(sum?.granted ?? 0n);
    const left = group.budget_seconds - granted;
    if (g.seconds > left)
      throw new GpulabError(
        'CONFLICT',
        `group "${group.name}" has a budget of ${h(group.budget_seconds)} GPU-h and ${h(granted)} GPU-h are granted ` +
          `already, so ${h(Math.max(0, left))} GPU-h are left; ${h(g.seconds)} GPU-h asked`,
        { budgetSeconds: group.budget_seconds, grantedSeconds: granted, askedSeconds: g.seconds },
      );
    await tx.$executeRaw`
      UPDATE memberships SET granted_seconds = granted_seconds + ${g.seconds} WHERE id = ${g.membershipId}::uuid`;
    await tx.quotaEntry.create({
      data: {
        membershipId: g.membershipId,
        kind: 'grant',
        seconds: g.seconds,
        actorId: g.actorId ?? null,
        note: g.note ?? null,
      },
    });
    return { grantedSeconds: g.seconds, balance: await balance(tx, g.membershipId) };
  }, TX);
}

export interface RevokeInput extends GrantInput {
  /** When the free balance is not enough, shrink the holds of the member's live jobs (newest admitted first). */
  force?: boolean;
}

export interface ShrunkHold {
  jobId: string;
  fromSeconds: number;
  toSeconds: number;
  usedSeconds: number;
}

/**
 * Takes back granted seconds. Without `force` only free seconds (409 CONFLICT otherwise). With `force`, the rest is
 * taken out of the holds of the member's ADMITTED/LAUNCHING/RUNNING/RETRYING jobs, newest admitted first: each job's
 * `held_seconds` and the membership's decrease by the same amount, never below what the job has already used (the
 * sum of its cost ledger rows); the scheduler then stops a running job whose projected use reaches its shrunk hold
 * (BUDGET_EXHAUSTED). All or nothing: if even that is not enough (the rest is used, or held by reservations), 409
 * CONFLICT naming the most that can be revoked now. Ledger: one jobless `release` row per shrunk hold (a `release`
 * row with the job's id would make the job's settlement think it had already settled) and one `revoke` row whose note
 * names the jobs.
 */
export async function revokeQuota(db: Db, r: RevokeInput) {
  checkSeconds(r.seconds);
  return db.$transaction(async (tx) => {
    await lockGroupOf(tx, r.membershipId);
    const jobs = r.force
      ? await tx.$queryRaw<{ id: string; held_seconds: number }[]>`
          SELECT id, held_seconds FROM jobs
          WHERE user_id = (SELECT user_id FROM memberships WHERE id = ${r.membershipId}::uuid)
            AND membership_id = ${r.membershipId}::uuid
            AND status::text = ANY(${[...HOLDING_STATUSES]})
          ORDER BY admitted_at DESC NULLS LAST, created_at DESC, id DESC
          FOR UPDATE`
      : [];
    const m = await lockMembership(tx, r.membershipId);
    const free = freeOf(m);
    const shrunk: ShrunkHold[] = [];
    if (r.seconds > free) {
      if (!r.force)
        throw new GpulabError(
          'CONFLICT',
          `cannot revoke ${h(r.seconds)} GPU-h from ${m.email}: ${h(free)} GPU-h are free ` +
            `(${h(m.held_seconds)} held by jobs or bookings, ${h(m.used_seconds)} used); ` +
            'force shrinks the holds of their running jobs',
          { askedSeconds: r.seconds, freeSeconds: free, heldSeconds: m.held_seconds, usedSeconds: m.used_seconds },
        );
      let need = r.seconds - free;
      const used = await usedByJob(
        tx,
        jobs.map((j) => j.id),
      );
      for (const j of jobs) {
        if (need === 0) break;
        const u = used.get(j.id) ?? 0;
        const take = Math.min(need, Math.max(0, j.held_seconds - u));
        if (take === 0) continue;
        shrunk.push({ jobId: j.id, fromSeconds: j.held_seconds, toSeconds: j.held_seconds - take, usedSeconds: u });
        need -= take;
      }
      if (need > 0) {
        const most = r.seconds - need;
        throw new GpulabError(
          'CONFLICT',
          `cannot revoke ${h(r.seconds)} GPU-h from ${m.email}: at most ${h(most)} GPU-h can be taken back now ` +
            `(${h(free)} free, ${h(most - free)} from job holds above what the jobs used); the rest is used or ` +
            'held by bookings',
          { askedSeconds: r.seconds, freeSeconds: free, revocableSeconds: most },
        );
      }
      for (const s of shrunk) {
        // the job row is locked; the guard re-checks its use in case the meter wrote since it was read
        const n = await tx.$executeRaw`
          UPDATE jobs SET held_seconds = ${s.toSeconds}
          WHERE id = ${s.jobId}::uuid AND held_seconds = ${s.fromSeconds}
            AND ${s.toSeconds} >= (SELECT COALESCE(SUM(gpu_seconds), 0) FROM cost_ledger WHERE job_id = ${s.jobId}::uuid)`;
        if (n !== 1)
          throw new GpulabError('CONFLICT', `job ${s.jobId} changed while its hold was being shrunk; try again`);
      }
    }
    const shrunkTotal = shrunk.reduce((a, s) => a + (s.fromSeconds - s.toSeconds), 0);
    await tx.$executeRaw`
      UPDATE memberships SET granted_seconds = granted_seconds - ${r.seconds}, held_seconds = held_seconds - ${shrunkTotal}
      WHERE id = ${r.membershipId}::uuid`;
    if (shrunk.length)
      await tx.quotaEntry.createMany({
        data: shrunk.map((s) => ({
          membershipId: r.membershipId,
          kind: 'release' as const,
          seconds: s.fromSeconds - s.toSeconds,
          actorId: r.actorId ?? null,
          note: `forced revoke: hold of job ${s.jobId} shrunk from ${s.fromSeconds} s to ${s.toSeconds} s (used ${s.usedSeconds} s)`,
        })),
      });
    await tx.quotaEntry.create({
      data: {
        membershipId: r.membershipId,
        kind: 'revoke',
        seconds: r.seconds,
        actorId: r.actorId ?? null,
        note: shrunk.length
          ? withNote(
              r.note,
              `forced: ${free} s free, holds shrunk on ${shrunk
                .map((s) => `job ${s.jobId} (-${s.fromSeconds - s.toSeconds} s)`)
                .join(', ')}`,
            )
          : (r.note ?? null),
      },
    });
    return { revokedSeconds: r.seconds, shrunk, balance: await balance(tx, r.membershipId) };
  }, TX);
}

async function usedByJob(tx: Tx, jobIds: string[]): Promise<Map<string, number>> {
  if (!jobIds.length) return new Map();
  const rows = await tx.costLedger.groupBy({
    by: ['jobId'],
    where: { jobId: { in: jobIds } },
    _sum: { gpuSeconds: true },
  });
  return new Map(rows.map((r) => [r.jobId, r._sum.gpuSeconds ?? 0]));
}

export interface MoveInput {
  fromMembershipId: string;
  toMembershipId: string;
  seconds: number;
  actorId?: string | null;
  note?: string | null;
}

/**
 * Moves free seconds from one member to another of the same group in one transaction (the group's granted total,
 * and so its budget, is unchanged): a `revoke` row on the giver and a `grant` row on the receiver, whose notes name
 * each other. 409 CONFLICT naming the numbers when the giver has too few free seconds.
 */
export async function moveQuota(db: Db, mv: MoveInput) {
  checkSeconds(mv.seconds);
  if (mv.fromMembershipId === mv.toMembershipId)
    throw new GpulabError('VALIDATION', 'cannot move hours from a member to the same member', { field: 'to' });
  return db.$transaction(async (tx) => {
    const group = await lockGroupOf(tx, mv.fromMembershipId);
    const [a, b] = [mv.fromMembershipId, mv.toMembershipId].sort();
    const locked = new Map<string, LockedMembership>();
    for (const id of [a!, b!]) locked.set(id, await lockMembership(tx, id));
    const from = locked.get(mv.fromMembershipId)!;
    const to = locked.get(mv.toMembershipId)!;
    if (to.group_id !== group.id)
      throw new GpulabError('VALIDATION', `${to.email} is not a member of group "${group.name}"`, { field: 'to' });
    const free = freeOf(from);
    if (mv.seconds > free)
      throw new GpulabError(
        'CONFLICT',
        `cannot move ${h(mv.seconds)} GPU-h from ${from.email}: ${h(free)} GPU-h are free`,
        { askedSeconds: mv.seconds, freeSeconds: free },
      );
    await tx.$executeRaw`
      UPDATE memberships SET granted_seconds = granted_seconds - ${mv.seconds} WHERE id = ${from.id}::uuid`;
    await tx.$executeRaw`
      UPDATE memberships SET granted_seconds = granted_seconds + ${mv.seconds} WHERE id = ${to.id}::uuid`;
    const actorId = mv.actorId ?? null;
    await tx.quotaEntry.createMany({
      data: [
        {
          membershipId: from.id,
          kind: 'revoke',
          seconds: mv.seconds,
          actorId,
          note: withNote(mv.note, `moved to ${to.email}`),
        },
        {
          membershipId: to.id,
          kind: 'grant',
          seconds: mv.seconds,
          actorId,
          note: withNote(mv.note, `moved from ${from.email}`),
        },
      ],
    });
    return {
      movedSeconds: mv.seconds,
      from: await balance(tx, from.id),
      to: await balance(tx, to.id),
    };
  }, TX);
}
