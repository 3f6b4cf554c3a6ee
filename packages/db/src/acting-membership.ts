import { type Db, sqlPool } from './client';

/** The membership a request acts in, with what a submission needs of its group. */
export interface ActingMembership {
  id: string;
  groupId: string;
  role: 'student' | 'instructor' | 'admin';
  group: { name: string; defaultMaxHours: number };
}

interface Row {
  id: string | null;
  group_id: string | null;
  role: ActingMembership['role'] | null;
  group_name: string | null;
  default_max_hours: number | null;
  flavor_known: boolean | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * One round trip for what every submission checks: the caller's membership in the named group (by name, or by id
 * when `group` is a UUID) or, when none is named, their oldest membership; and, when `flavor` is given, whether that
 * GPU flavor exists. Runs on every submission, so it is SQL rather than two Prisma queries (see `sqlPool`).
 */
export async function findActingMembership(
  db: Db,
  userId: string,
  group: string | undefined,
  flavor?: string,
): Promise<{ membership: ActingMembership | null; flavorKnown: boolean | null }> {
  const { rows } = await sqlPool(db).query<Row>(
    `SELECT m.id, m.group_id, m.role, m.group_name, m.default_max_hours,
            CASE WHEN $4::text IS NULL THEN NULL ELSE EXISTS (SELECT 1 FROM flavors f WHERE f.name = $4) END
              AS flavor_known
       FROM (SELECT 1) AS one
       LEFT JOIN LATERAL (
         SELECT m.id, m.group_id, m.role::text AS role, g.name AS group_name, g.default_max_hours
           FROM memberships m JOIN groups g ON g.id = m.group_id
          WHERE m.user_id = $1 AND ($2::text IS NULL OR g.name = $2 OR m.group_id = $3::uuid)
          ORDER BY m.created_at ASC
          LIMIT 1
       ) AS m ON true`,
    [userId, group ?? null, group !== undefined && UUID.test(group) ? group : null, flavor ?? null],
  );
  const r = rows[0]!;
  const membership =
    r.id && r.group_id && r.role && r.group_name !== null && r.default_max_hours !== null
      ? {
          id: r.id,
          groupId: r.group_id,
          role: r.role,
          group: { name: r.group_name, defaultMaxHours: r.default_max_hours },
        }
      : null;
  return { membership, flavorKnown: r.flavor_known };
}
