import { balanceOf } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';

export function meRoutes(app: FastifyInstance, deps: ApiDeps): void {
  /** Who I am and my quota in each group: granted, held, used and free GPU-hours. */
  app.get('/v1/me', doc('me', 'Who I am and my quota in each group'), async (req) => {
    const who = requireUser(req);
    const user = await deps.db.user.findUniqueOrThrow({
      where: { id: who.userId },
      include: { memberships: { include: { group: true }, orderBy: { createdAt: 'asc' } } },
    });
    return {
      id: user.id,
      email: user.email,
      name: user.name,
      role: user.role,
      quotas: user.memberships.map((m) => {
        const b = balanceOf(m);
        return {
          group: { id: m.groupId, name: m.group.name },
          grantedHours: b.grantedSeconds / 3600,
          heldHours: b.heldSeconds / 3600,
          usedHours: b.usedSeconds / 3600,
          freeHours: b.freeSeconds / 3600,
          seconds: b,
        };
      }),
    };
  });
}
