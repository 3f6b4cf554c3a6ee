import { GpulabError } from '@gpulab/core';
import { getJobView } from '@gpulab/db';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';
import { cancelJob } from '../services/cancel-job';
import { SubmitDocSchema, submitJob } from '../services/submit-job';

const IdParams = z.object({ id: z.string().uuid({ message: 'job id must be a UUID' }) });
const ListQuery = z.object({
  status: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

/** Loads a job the caller may see; another user's job is a 404 (its existence is not revealed). */
async function visibleJob(deps: ApiDeps, req: FastifyRequest) {
  const who = requireUser(req);
  const { id } = IdParams.parse(req.params);
  const view = await getJobView(deps.db, id);
  if (!view || (view.userId !== who.userId && who.role !== 'admin'))
    throw new GpulabError('NOT_FOUND', `job ${id} not found`);
  return view;
}

export function jobRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/v1/jobs',
    doc('jobs', 'Submit a job (Idempotency-Key header makes retries safe)', { body: SubmitDocSchema }),
    async (req, reply) => {
      const who = requireUser(req);
      const key = req.headers['idempotency-key'];
      const { created, job } = await submitJob(deps, who, req.body, typeof key === 'string' ? key : null);
      return reply.status(created ? 201 : 200).send(job);
    },
  );

  app.get('/v1/jobs', doc('jobs', 'List my jobs', { querystring: ListQuery }), async (req) => {
    const who = requireUser(req);
    const q = ListQuery.parse(req.query);
    const jobs = await deps.db.job.findMany({
      where: { userId: who.userId, ...(q.status ? { status: q.status as never } : {}) },
      orderBy: { createdAt: 'desc' },
      take: q.limit,
      select: { id: true, name: true, status: true, statusReason: true, pendingReason: true, createdAt: true },
    });
    return { items: jobs };
  });

  app.get(
    '/v1/jobs/:id',
    doc('jobs', 'A job: status, pending reason, transitions, attempts, metrics, cost', { params: IdParams }),
    async (req) => visibleJob(deps, req),
  );

  app.post(
    '/v1/jobs/:id/cancel',
    doc('jobs', 'Cancel a job (a running one stops after a checkpoint)', { params: IdParams }),
    async (req) => {
      const job = await visibleJob(deps, req);
      return cancelJob(deps, job.id);
    },
  );
}
