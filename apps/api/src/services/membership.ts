import { GpulabError } from '@gpulab/core';
import { type ActingMembership, findActingMembership, type Principal } from '@gpulab/db';
import type { ApiDeps } from '../deps';
import { TtlCache } from './ttl-cache';

/**
 * How long a found membership (with its group's default max hours, and the flavor's existence when asked) is reused
 * without asking Postgres again. A role change or a group setting made through this process takes effect at once
 * (`forgetMemberships`); one made by another API replica within this time. Not-a-member and unknown-flavor answers
 * are never cached, so a new member or a new flavor works at once.
 */
export const MEMBERSHIP_CACHE_TTL_MS = 5_000;

type Resolved = ActingMembership & { flavorKnown: boolean | null };
const caches = new WeakMap<ApiDeps['db'], TtlCache<Resolved & { userId: string }>>();

function cacheOf(db: ApiDeps['db']) {
  const known = caches.get(db);
  if (known) return known;
  const c = new TtlCache<Resolved & { userId: string }>(MEMBERSHIP_CACHE_TTL_MS);
  caches.set(db, c);
  return c;
}

/** Makes this process read memberships again: of one user, or (a group changed) of everyone. */
export function forgetMemberships(db: ApiDeps['db'], userId?: string): void {
  if (userId === undefined) cacheOf(db).clear();
  else cacheOf(db).deleteWhere((m) => m.userId === userId);
}

/**
 * The membership a request acts in: the named group (by name or id) or, when none is named, the caller's oldest
 * membership. Not a member: 403 naming the group. With `flavor`, the same round trip also says whether that GPU
 * flavor exists (`flavorKnown`); the caller decides what an unknown one means.
 */
export async function resolveMembership(
  deps: ApiDeps,
  who: Principal,
  group: string | undefined,
  flavor?: string,
): Promise<Resolved> {
  const cache = cacheOf(deps.db);
  const key = `${who.userId}\u0000${group ?? ''}\u0000${flavor ?? ''}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const { membership, flavorKnown } = await findActingMembership(deps.db, who.userId, group, flavor);
  if (!membership)
    throw group
      ? new GpulabError('FORBIDDEN', `you are not a member of group "${group}"`, { field: 'group' })
      : new GpulabError('FORBIDDEN', 'you are not a member of any group; ask your instructor for GPU hours');
  const resolved = { ...membership, flavorKnown };
  if (flavorKnown !== false) cache.set(key, Object.freeze({ ...resolved, userId: who.userId }));
  return resolved;
}

/** Instructors of the group and admins may set a job's priority; students submit at 0 (403 otherwise). */
export function checkPriority(who: Principal, membershipRole: string, priority: number): void {
  const may = who.role === 'admin' || membershipRole === 'instructor' || membershipRole === 'admin';
  if (priority !== 0 && !may)
    throw new GpulabError('FORBIDDEN', "only the group's instructors and admins may set a job's priority", {
      field: 'priority',
    });
}
