import { quoteSpec } from '@gpulab/core';
import { loadAdmissionSnapshot } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';
import { resolveDatasetRef } from '../services/dataset-ref';
import { checkPriority, resolveMembership } from '../services/membership';
import { parseSubmitBody, SubmitDocSchema } from '../services/submit-job';

/**
 * Quote: the body of a job submission in, what it would hold and cost at most and when it would start out — one
 * admission pass over the current queue with the job added, nothing written. Capacity is the flavor table's (the
 * scheduler keeps it in step with its launcher).
 */
export function quoteRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/v1/quote',
    doc('jobs', 'Quote a job: GPU-hours, cost and expected start, before submitting', { body: SubmitDocSchema }),
    async (req) => {
      const who = requireUser(req);
      const { group, priority, spec } = parseSubmitBody(await resolveDatasetRef(deps, who, req.body ?? {}));
      const m = await resolveMembership(deps, who, group);
      checkPriority(who, m.role, priority);
      const now = deps.clock();
      const flavors = await deps.db.flavor.findMany({ select: { name: true, capacity: true } });
      const snapshot = await loadAdmissionSnapshot(deps.db, {
        capacity: Object.fromEntries(flavors.map((f) => [f.name, f.capacity])),
        policy: deps.policy,
        now,
        also: { userId: who.userId, membershipId: m.id },
      });
      const q = quoteSpec(
        spec,
        {
          userId: who.userId,
          membershipId: m.id,
          groupId: m.groupId,
          priority,
          defaultMaxHours: m.group.defaultMaxHours,
        },
        snapshot,
        now,
      );
      return {
        group: { id: m.groupId, name: m.group.name },
        flavor: spec.resources.flavor,
        gpus: spec.resources.gpus,
        gpuHours: q.gpuHours,
        holdSeconds: q.holdSeconds,
        rateMicrosPerGpuHour: q.rateMicrosPerGpuHour,
        costMicros: q.costMicros,
        cost: q.costMicros === null ? null : q.costMicros / 1e6,
        admitNow: q.admitNow,
        usesReservation: q.usesReservation,
        estimatedStart: q.estimatedStart?.toISOString() ?? null,
        pending: q.admitNow ? null : { reason: q.reason, message: q.message, position: q.position },
      };
    },
  );
}
