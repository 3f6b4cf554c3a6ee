import { GpulabError, isTerminal } from '@gpulab/core';
import { audit } from '@gpulab/db';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';
import { cancelJob } from '../services/cancel-job';
import { JobListQuery, listJobs, visibleJobView } from '../services/job-access';
import { jobArtifacts } from '../services/job-artifacts';
import { followLogs, logText } from '../services/job-logs';
import { SubmitDocSchema, submitJob } from '../services/submit-job';

const IdParams = z.object({ id: z.string().uuid({ message: 'job id must be a UUID' }) });
const LogsQuery = z
  .object({
    attempt: z.coerce.number().int().min(1).max(100).optional().describe('default: the latest attempt'),
    follow: z
      .enum(['0', '1', 'true', 'false'])
      .default('0')
      .describe('stream as server-sent events until the job ends'),
  })
  .strict();

async function visibleJob(deps: ApiDeps, req: FastifyRequest) {
  const who = requireUser(req);
  const { id } = IdParams.parse(req.params);
  return { who, job: await visibleJobView(deps, who, id) };
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

  app.get(
    '/v1/jobs',
    doc('jobs', 'List jobs, newest first: mine, or (instructors, admins) by user and group', {
      querystring: JobListQuery,
    }),
    async (req) => listJobs(deps, requireUser(req), JobListQuery.parse(req.query)),
  );

  app.get(
    '/v1/jobs/:id',
    doc('jobs', 'A job: status, pending reason, transitions, attempts, metrics, cost', { params: IdParams }),
    async (req) => (await visibleJob(deps, req)).job,
  );

  app.post(
    '/v1/jobs/:id/cancel',
    doc('jobs', 'Cancel a job (a running one stops after a checkpoint)', { params: IdParams }),
    async (req) => {
      const { who, job } = await visibleJob(deps, req);
      const view = await cancelJob(deps, job.id);
      if (job.userId !== who.userId && !isTerminal(job.status as never))
        await audit(deps.db, {
          actorId: who.userId,
          action: 'job.cancel_by_other',
          targetType: 'job',
          targetId: job.id,
          data: { owner: job.userId, status: job.status },
          at: deps.clock(),
        });
      return view;
    },
  );

  app.get(
    '/v1/jobs/:id/logs',
    doc(
      'jobs',
      "A job's output: text, or server-sent events with follow=1 (Last-Event-ID resumes)",
      { params: IdParams, querystring: LogsQuery },
      { produces: ['text/plain', 'text/event-stream'] },
    ),
    async (req, reply) => {
      const { job } = await visibleJob(deps, req);
      const q = LogsQuery.parse(req.query);
      const attempt = q.attempt ?? Math.max(1, job.attempt);
      if (q.follow === '1' || q.follow === 'true') {
        const last = req.headers['last-event-id'];
        return followLogs(deps, req, reply, job, {
          attempt: q.attempt ?? null,
          lastEventId: typeof last === 'string' && /^\d+-\d+$/.test(last) ? last : null,
        });
      }
      return reply.header('content-type', 'text/plain; charset=utf-8').send(await logText(deps, job.id, attempt));
    },
  );

  app.get(
    '/v1/jobs/:id/artifacts',
    doc('jobs', "A job's model files, metrics and logs, with presigned download URLs (15 min)", { params: IdParams }),
    async (req) => {
      const { job } = await visibleJob(deps, req);
      return jobArtifacts(deps, job.id);
    },
  );

  /**
   * Submits a finished job again with the same spec and group, as a new job (a job's history is never rewritten).
   * Retrying the same job twice returns the first retry (idempotent). Only the owner may retry.
   */
  app.post(
    '/v1/jobs/:id/retry',
    doc('jobs', 'Submit a finished job again as a new job with the same spec', { params: IdParams }),
    async (req, reply) => {
      const { who, job } = await visibleJob(deps, req);
      if (job.userId !== who.userId) throw new GpulabError('FORBIDDEN', 'only the owner can retry a job');
      if (!isTerminal(job.status as never) || job.status === 'SUCCEEDED')
        throw new GpulabError('CONFLICT', `only a job that did not succeed can be retried; this one is ${job.status}`, {
          status: job.status,
        });
      const body = { ...(job.spec as object), group: job.groupId };
      const { created, job: next } = await submitJob(deps, who, body, `retry-of:${job.id}`);
      return reply.status(created ? 201 : 200).send({ ...next, retryOf: job.id });
    },
  );
}
