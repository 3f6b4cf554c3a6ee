import { GpulabError } from '@gpulab/core';
import type { Principal } from '@gpulab/db';
import { z } from 'zod';
import type { ApiDeps } from '../deps';

/**
 * The membership a request acts in: the named group (by name or id) or, when none is named, the caller's oldest
 * membership. Not a member: 403 naming the group.
 */
export async function resolveMembership(deps: ApiDeps, who: Principal, group: string | undefined) {
  const isUuid = group !== undefined && z.string().uuid().safeParse(group).success;
  const m = await deps.db.membership.findFirst({
    where: {
      userId: who.userId,
      ...(group ? { OR: [{ group: { name: group } }, ...(isUuid ? [{ groupId: group }] : [])] } : {}),
    },
    orderBy: { createdAt: 'asc' },
    include: { group: { select: { name: true, defaultMaxHours: true } } },
  });
  if (!m)
    throw group
      ? new GpulabError('FORBIDDEN', `you are not a member of group "${group}"`, { field: 'group' })
      : new GpulabError('FORBIDDEN', 'you are not a member of any group; ask your instructor for GPU hours');
  return m;
}

/** Instructors of the group and admins may set a job's priority; students submit at 0 (403 otherwise). */
export function checkPriority(who: Principal, membershipRole: string, priority: number): void {
  const may = who.role === 'admin' || membershipRole === 'instructor' || membershipRole === 'admin';
  if (priority !== 0 && !may)
    throw new GpulabError('FORBIDDEN', "only the group's instructors and admins may set a job's priority", {
      field: 'priority',
    });
}
