import { GpulabError, isTerminal } from '@gpulab/core';
import { recordTrainerEvent, TrainerEventSchema } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireJobToken } from '../plugins/auth';
import { doc } from '../plugins/openapi';

const Params = z.object({ id: z.string().uuid() });

/** Routes for trainers, authenticated by a token scoped to one job: they can only write that job's events. */
export function internalRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/v1/internal/jobs/:id/events',
    doc('internal', 'Trainer events (job token only)', { params: Params, body: TrainerEventSchema }),
    async (req, reply) => {
      const { id } = Params.parse(req.params);
      requireJobToken(req, id);
      const ev = TrainerEventSchema.parse(req.body);
      const job = await deps.db.job.findUnique({ where: { id }, select: { status: true, attempt: true } });
      if (!job) throw new GpulabError('NOT_FOUND', `job ${id} not found`);
      if (isTerminal(job.status)) throw new GpulabError('CONFLICT', `job already ended as ${job.status}`);
      await recordTrainerEvent(deps.db, id, job.attempt, ev, deps.clock());
      return reply.status(204).send();
    },
  );
}
