import { GpulabError } from '@gpulab/core';
import { findGroup, type Principal, type UsageKey, type UsageQuery, usageReport } from '@gpulab/db';
import type { ApiDeps } from '../deps';
import { managedGroupIds } from './group-access';

export interface UsageRequest {
  by: UsageKey[];
  from?: Date;
  to?: Date;
  /** A group id or name. */
  group?: string;
}

/**
 * A usage report limited to what the caller may see: an admin everything; anyone else the jobs of the groups they
 * manage (instructor) plus their own jobs — so a student sees only their own rows. A `group` the caller does not
 * belong to is a 404, as the group routes answer. Totals come from the same filters without grouping (so `jobs` is
 * the distinct count, not the sum of the rows').
 */
export async function usageForCaller(deps: ApiDeps, who: Principal, r: UsageRequest) {
  const isAdmin = who.role === 'admin';
  let groupIds: string[] | null = null;
  if (r.group) {
    const g = await findGroup(deps.db, r.group);
    const member =
      g && !isAdmin
        ? await deps.db.membership.findUnique({ where: { groupId_userId: { groupId: g.id, userId: who.userId } } })
        : null;
    if (!g || (!isAdmin && !member))
      throw new GpulabError('NOT_FOUND', `group ${r.group} not found`, { field: 'group' });
    groupIds = [g.id];
  }
  const q: UsageQuery = {
    by: r.by,
    from: r.from ?? null,
    to: r.to ?? null,
    groupIds,
    visibleTo: isAdmin ? null : { userId: who.userId, groupIds: await managedGroupIds(deps.db, who.userId) },
  };
  const [rows, totals] = await Promise.all([usageReport(deps.db, q), usageReport(deps.db, { ...q, by: [] })]);
  return { rows, totals: totals[0]! };
}

/** `gpulab-usage-<by>-<from>-<to>.csv`, from safe characters only. */
export function usageFilename(r: UsageRequest): string {
  const day = (d: Date | undefined, none: string) => (d ? d.toISOString().slice(0, 10) : none);
  const parts = [r.by.join('-') || 'total', day(r.from, 'start'), day(r.to, 'now')];
  return `gpulab-usage-${parts.join('_')}.csv`.replace(/[^A-Za-z0-9._-]/g, '');
}
