import type { Db } from './client';
import { grantSeconds } from './quota';
import { issueToken } from './tokens';

/**
 * Idempotent bootstrap of a user with a group membership and granted hours: used by the quickstart and tests, and
 * by admins setting up a first course. Grants only top up to `grantSeconds` (never double-grant on re-run).
 */
export async function ensureUserWithQuota(
  db: Db,
  u: {
    email: string;
    name: string;
    role?: 'student' | 'instructor' | 'admin';
    group: string;
    grantSeconds: number;
    periodStart: Date;
    periodEnd: Date;
  },
) {
  const user = await db.user.upsert({
    where: { email: u.email },
    create: { email: u.email, name: u.name, role: u.role ?? 'student' },
    update: {},
  });
  const group = await db.group.upsert({
    where: { name: u.group },
    create: {
      name: u.group,
      budgetSeconds: Math.max(u.grantSeconds, 1),
      periodStart: u.periodStart,
      periodEnd: u.periodEnd,
    },
    update: {},
  });
  const membership = await db.membership.upsert({
    where: { groupId_userId: { groupId: group.id, userId: user.id } },
    create: { groupId: group.id, userId: user.id, role: u.role ?? 'student' },
    update: {},
  });
  const missing = u.grantSeconds - membership.grantedSeconds;
  if (missing > 0) {
    await grantSeconds(db, { membershipId: membership.id, seconds: missing, note: 'bootstrap grant' });
    // a bootstrap grows the group's budget to cover what it granted (instructors' grants stay within it)
    await db.$executeRaw`
      UPDATE groups SET budget_seconds = GREATEST(budget_seconds,
        (SELECT COALESCE(SUM(granted_seconds), 0) FROM memberships WHERE group_id = ${group.id}::uuid))
      WHERE id = ${group.id}::uuid`;
  }
  return { user, group, membership };
}

export async function createUserToken(db: Db, userId: string, name: string, expiresAt: Date | null = null) {
  return issueToken(db, { userId, name, scope: 'user', expiresAt });
}

export async function ensureFlavor(db: Db, f: { name: string; rateMicrosPerHour: number; capacity: number }) {
  return db.flavor.upsert({
    where: { name: f.name },
    create: { name: f.name, rateMicros: BigInt(f.rateMicrosPerHour), capacity: f.capacity },
    update: { capacity: f.capacity },
  });
}
