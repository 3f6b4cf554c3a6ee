import { GpulabError } from '@gpulab/core';
import { type Db, findGroup, findUserByEmail, groupTotals, memberView, type Principal } from '@gpulab/db';
import type { Group } from '@prisma/client';
import { z } from 'zod';

/**
 * Who may do what with a group. A global admin (`users.role = admin`) may do everything; a member whose membership
 * role is `instructor` (or `admin`) manages that group; other members see only their own quota and usage. A group
 * the caller cannot see at all is a 404, as if it did not exist; a group they belong to but do not manage is a 403.
 */

export type GroupStanding = 'admin' | 'instructor' | 'student';

const MANAGER_ROLES = ['instructor', 'admin'] as const;

export function requireAdmin(who: Principal): void {
  if (who.role !== 'admin') throw new GpulabError('FORBIDDEN', 'only an administrator can do this');
}

/** The group (by id or name) and the caller's standing in it; 404 when they cannot see it. */
export async function groupStanding(
  db: Db,
  who: Principal,
  idOrName: string,
): Promise<{ group: Group; standing: GroupStanding }> {
  const group = await findGroup(db, idOrName);
  if (group && who.role === 'admin') return { group, standing: 'admin' };
  const m = group
    ? await db.membership.findUnique({ where: { groupId_userId: { groupId: group.id, userId: who.userId } } })
    : null;
  if (!group || !m) throw new GpulabError('NOT_FOUND', `group ${idOrName} not found`);
  return { group, standing: (MANAGER_ROLES as readonly string[]).includes(m.role) ? 'instructor' : 'student' };
}

/** The group, if the caller manages it: 403 for its students, 404 for strangers. */
export async function managedGroup(db: Db, who: Principal, idOrName: string): Promise<Group> {
  const { group, standing } = await groupStanding(db, who, idOrName);
  if (standing === 'student')
    throw new GpulabError('FORBIDDEN', `only instructors of group "${group.name}" or administrators can do this`);
  return group;
}

/** Ids of the groups where the user is an instructor (or admin member). */
export async function managedGroupIds(db: Db, userId: string): Promise<string[]> {
  const rows = await db.membership.findMany({
    where: { userId, role: { in: [...MANAGER_ROLES] } },
    select: { groupId: true },
  });
  return rows.map((r) => r.groupId);
}

const isUuid = (s: string) => z.string().uuid().safeParse(s).success;

/** A member of the group named by user id or email; 404 naming the field when they are not one. */
export async function resolveMember(db: Db, group: Group, ref: string, field: string) {
  const userId = isUuid(ref) ? ref : (await findUserByEmail(db, ref))?.id;
  const m = userId
    ? await db.membership.findUnique({
        where: { groupId_userId: { groupId: group.id, userId } },
        include: { user: true },
      })
    : null;
  if (!m) throw new GpulabError('NOT_FOUND', `${ref} is not a member of group "${group.name}"`, { field });
  return m;
}

/** Integer GPU-seconds from hours; a positive amount that rounds to nothing is rejected naming the field. */
export function hoursToSeconds(hours: number, field: string): number {
  const seconds = Math.round(hours * 3600);
  if (!Number.isSafeInteger(seconds) || seconds <= 0)
    throw new GpulabError('VALIDATION', `${field} must be at least one GPU-second (1/3600 h)`, { field });
  return seconds;
}

/** A member's balance and the group's allocation totals after a quota change. */
export async function memberAndTotals(db: Db, group: Group, membershipId: string) {
  const [m, all] = await Promise.all([
    db.membership.findUniqueOrThrow({ where: { id: membershipId }, include: { user: true } }),
    db.membership.findMany({
      where: { groupId: group.id },
      select: { grantedSeconds: true, heldSeconds: true, usedSeconds: true },
    }),
  ]);
  return { member: memberView(m), totals: groupTotals(group, all) };
}
