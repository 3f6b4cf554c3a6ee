import { randomUUID } from 'node:crypto';
import { GpulabError } from '@gpulab/core';
import { type Group, Prisma, type User } from '@prisma/client';
import type { Db } from './client';
import { balanceOf } from './quota';

/**
 * Groups (courses, labs) and their members. A group has a budget of GPU-seconds for a period; members' quotas are
 * granted inside it (`group-quota.ts` moves seconds, under a lock on the group row, so that the sum of members'
 * `granted_seconds` never exceeds the budget). A membership's role says who manages the group: `instructor` (or
 * `admin`) members may add members and grant, revoke and move hours; students see only their own quota.
 */

export type MemberRole = 'student' | 'instructor';

export interface CreateGroupInput {
  name: string;
  budgetSeconds: number;
  periodStart: Date;
  periodEnd: Date;
  defaultMaxHours?: number;
  maxRunningGpusPerUser?: number | null;
}

/** Creates a group; 409 CONFLICT when the name is taken. */
export async function createGroup(db: Db, g: CreateGroupInput): Promise<Group> {
  if (!Number.isSafeInteger(g.budgetSeconds) || g.budgetSeconds < 0)
    throw new GpulabError('VALIDATION', 'budget must be a whole, non-negative number of GPU-seconds', {
      field: 'budgetSeconds',
    });
  if (!(g.periodEnd.getTime() > g.periodStart.getTime()))
    throw new GpulabError('VALIDATION', 'periodEnd must be after periodStart', { field: 'periodEnd' });
  try {
    return await db.group.create({
      data: {
        name: g.name,
        budgetSeconds: g.budgetSeconds,
        periodStart: g.periodStart,
        periodEnd: g.periodEnd,
        ...(g.defaultMaxHours !== undefined ? { defaultMaxHours: g.defaultMaxHours } : {}),
        maxRunningGpusPerUser: g.maxRunningGpusPerUser ?? null,
      },
    });
  } catch (e) {
    if (e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002')
      throw new GpulabError('CONFLICT', `a group named "${g.name}" already exists`, { field: 'name' });
    throw e;
  }
}

/** A group by id (a UUID) or by name; null when there is none. */
export async function findGroup(db: Db, idOrName: string): Promise<Group | null> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrName);
  return db.group.findFirst({ where: isUuid ? { OR: [{ id: idOrName }, { name: idOrName }] } : { name: idOrName } });
}

/** A user by email, case-insensitively (emails are stored as typed; new ones are stored trimmed and lower-case). */
export async function findUserByEmail(db: Db, email: string): Promise<User | null> {
  return db.user.findFirst({
    where: { email: { equals: email.trim(), mode: 'insensitive' } },
    orderBy: { createdAt: 'asc' },
  });
}

export type UserRef = { userId: string } | { email: string; name?: string | null };

export interface AddMemberInput {
  groupId: string;
  role: MemberRole;
  user: UserRef;
}

/**
 * Adds a user to a group, or changes the role of a member: idempotent (an upsert on group + user, so concurrent
 * calls cannot create two memberships). A user given by email who does not exist yet is created (role student,
 * name from `name` or the email's local part); one given by id must exist. Quota is not touched.
 */
export async function addMember(db: Db, m: AddMemberInput) {
  const group = await db.group.findUnique({ where: { id: m.groupId }, select: { id: true } });
  if (!group) throw new GpulabError('NOT_FOUND', `group ${m.groupId} not found`);
  let user: User | null;
  let userCreated = false;
  if ('userId' in m.user) {
    user = await db.user.findUnique({ where: { id: m.user.userId } });
    if (!user) throw new GpulabError('NOT_FOUND', `user ${m.user.userId} not found`, { field: 'userId' });
  } else {
    user = await findUserByEmail(db, m.user.email);
    if (!user) {
      const email = m.user.email.trim().toLowerCase();
      const name = m.user.name?.trim() || email.split('@')[0] || email;
      const inserted = await db.$queryRaw<{ id: string }[]>`
        INSERT INTO users (id, email, name) VALUES (${randomUUID()}::uuid, ${email}, ${name})
        ON CONFLICT (email) DO NOTHING RETURNING id`;
      userCreated = inserted.length === 1;
      user = await db.user.findUniqueOrThrow({ where: { email } });
    }
  }
  const rows = await db.$queryRaw<{ id: string; inserted: boolean }[]>`
    INSERT INTO memberships (id, group_id, user_id, role)
    VALUES (${randomUUID()}::uuid, ${m.groupId}::uuid, ${user.id}::uuid, ${m.role}::"Role")
    ON CONFLICT (group_id, user_id) DO UPDATE SET role = EXCLUDED.role
    RETURNING id, (xmax = 0) AS inserted`;
  const row = rows[0]!;
  const membership = await db.membership.findUniqueOrThrow({ where: { id: row.id } });
  return { membership, user, created: row.inserted, userCreated };
}

const hours = (s: number) => s / 3600;

/** Budget and allocation of a group: what is granted to members, held by their jobs, used, and not yet allocated. */
export function groupTotals(
  group: { budgetSeconds: number },
  members: readonly { grantedSeconds: number; heldSeconds: number; usedSeconds: number }[],
) {
  const grantedSeconds = members.reduce((s, m) => s + m.grantedSeconds, 0);
  const heldSeconds = members.reduce((s, m) => s + m.heldSeconds, 0);
  const usedSeconds = members.reduce((s, m) => s + m.usedSeconds, 0);
  const unallocatedSeconds = group.budgetSeconds - grantedSeconds;
  return {
    budgetSeconds: group.budgetSeconds,
    grantedSeconds,
    heldSeconds,
    usedSeconds,
    unallocatedSeconds,
    budgetHours: hours(group.budgetSeconds),
    grantedHours: hours(grantedSeconds),
    heldHours: hours(heldSeconds),
    usedHours: hours(usedSeconds),
    unallocatedHours: hours(unallocatedSeconds),
  };
}

function groupSummary(g: Group) {
  return {
    id: g.id,
    name: g.name,
    budgetHours: hours(g.budgetSeconds),
    periodStart: g.periodStart.toISOString(),
    periodEnd: g.periodEnd.toISOString(),
    defaultMaxHours: g.defaultMaxHours,
    maxRunningGpusPerUser: g.maxRunningGpusPerUser,
  };
}

export function memberView(m: {
  id: string;
  role: string;
  grantedSeconds: number;
  heldSeconds: number;
  usedSeconds: number;
  user: { id: string; email: string; name: string };
}) {
  const b = balanceOf(m);
  return {
    membershipId: m.id,
    user: { id: m.user.id, email: m.user.email, name: m.user.name },
    role: m.role,
    grantedHours: hours(b.grantedSeconds),
    heldHours: hours(b.heldSeconds),
    usedHours: hours(b.usedSeconds),
    freeHours: hours(b.freeSeconds),
    seconds: b,
  };
}

/**
 * The groups a user can see, with their role in each: every group for a global admin (role `admin` where they are
 * not a member), otherwise the groups they belong to. `quota` is their own balance there (null when not a member).
 */
export async function listGroupsFor(db: Db, who: { userId: string; isAdmin: boolean }) {
  const groups = await db.group.findMany({
    where: who.isAdmin ? {} : { memberships: { some: { userId: who.userId } } },
    include: { memberships: { where: { userId: who.userId } } },
    orderBy: { name: 'asc' },
  });
  return groups.map((g) => {
    const mine = g.memberships[0];
    return {
      ...groupSummary(g),
      myRole: who.isAdmin ? 'admin' : (mine?.role ?? null),
      quota: mine
        ? {
            grantedHours: hours(mine.grantedSeconds),
            heldHours: hours(mine.heldSeconds),
            usedHours: hours(mine.usedSeconds),
            freeHours: hours(balanceOf(mine).freeSeconds),
          }
        : null,
    };
  });
}

/** A group with its members' balances and its allocation totals (for instructors and admins). */
export async function getGroupView(db: Db, groupId: string) {
  const g = await db.group.findUnique({
    where: { id: groupId },
    include: { memberships: { include: { user: true }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] } },
  });
  if (!g) return null;
  return {
    ...groupSummary(g),
    totals: groupTotals(g, g.memberships),
    members: g.memberships.map(memberView),
  };
}

export interface LedgerPageInput {
  groupId: string;
  limit: number;
  /** Opaque, from the previous page's `nextCursor`. */
  cursor?: string | null;
}

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const at = new Date(iso ?? '');
  if (!id || !/^[0-9a-f-]{36}$/i.test(id) || Number.isNaN(at.getTime()))
    throw new GpulabError('VALIDATION', 'cursor is not one this API returned', { field: 'cursor' });
  return { at, id };
}

/**
 * The quota entries of a group's memberships (grants, revokes, holds, settlements, releases), newest first, a page
 * at a time: keyset pagination on (created_at, id), so pages stay stable while new entries arrive.
 */
export async function listGroupLedger(db: Db, p: LedgerPageInput) {
  const after = p.cursor ? decodeCursor(p.cursor) : null;
  const rows = await db.quotaEntry.findMany({
    where: {
      membership: { groupId: p.groupId },
      ...(after ? { OR: [{ createdAt: { lt: after.at } }, { createdAt: after.at, id: { lt: after.id } }] } : {}),
    },
    include: { membership: { include: { user: { select: { id: true, email: true, name: true } } } } },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: p.limit + 1,
  });
  const page = rows.slice(0, p.limit);
  const actorIds = [...new Set(page.flatMap((r) => (r.actorId ? [r.actorId] : [])))];
  const actors = new Map(
    (await db.user.findMany({ where: { id: { in: actorIds } }, select: { id: true, email: true } })).map((u) => [
      u.id,
      u,
    ]),
  );
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      id: r.id,
      at: r.createdAt.toISOString(),
      kind: r.kind,
      seconds: r.seconds,
      hours: hours(r.seconds),
      membershipId: r.membershipId,
      user: r.membership.user,
      jobId: r.jobId,
      reservationId: r.reservationId,
      actor: r.actorId ? (actors.get(r.actorId) ?? { id: r.actorId, email: null }) : null,
      note: r.note,
    })),
    nextCursor: rows.length > p.limit && last ? encodeCursor(last.createdAt, last.id) : null,
  };
}
