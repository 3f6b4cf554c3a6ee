import { GpulabError, JobSpecSchema, maxRuntimeSecondsOf } from '@gpulab/core';
import { createJob, getJobView, type Principal } from '@gpulab/db';
import { parseS3Uri } from '@gpulab/storage';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { DatasetRefDocSchema, resolveDatasetRef } from './dataset-ref';
import { checkPriority, resolveMembership } from './membership';

/** What POST /v1/jobs and /v1/quote accept, for the API document: a job spec plus `group` and `priority`. */
export const SubmitDocSchema = JobSpecSchema.extend({
  dataset: DatasetRefDocSchema,
  group: z.string().optional().describe("group name or id; default: the caller's first group"),
  priority: z.number().int().optional().describe('higher first; instructors and admins only'),
});

/** A job spec plus where it runs: `group` (name or id; default the caller's first) and `priority` (higher first). */
export const SubmitBodySchema = z
  .object({
    group: z.string().min(1).max(200).optional(),
    priority: z.number().int().min(-1000).max(1000).default(0),
  })
  .passthrough()
  .transform(({ group, priority, ...spec }) => ({ group, priority, spec: JobSpecSchema.parse(spec) }));

/**
 * Creates a QUEUED job (durable in Postgres first) and hands it to the scheduler through the dispatch queue. An
 * Idempotency-Key makes retries of the same request safe. The queue entry is idempotent too; if Redis is down the
 * job is still accepted, and the scheduler's reconciler enqueues it later.
 */
export async function submitJob(deps: ApiDeps, who: Principal, body: unknown, idempotencyKey: string | null) {
  if (idempotencyKey !== null && !/^[\x21-\x7e]{1,200}$/.test(idempotencyKey))
    throw new GpulabError('VALIDATION', 'Idempotency-Key must be 1-200 visible ASCII characters', {
      field: 'Idempotency-Key',
    });
  const { group, priority, spec } = SubmitBodySchema.parse(await resolveDatasetRef(deps, who, body ?? {}));
  const loc = parseS3Uri(spec.dataset.uri);
  if (loc.bucket !== deps.bucket)
    throw new GpulabError('VALIDATION', `dataset.uri must be in bucket "${deps.bucket}"`, { field: 'dataset.uri' });
  if (spec.model.pretrained && parseS3Uri(spec.model.pretrained).bucket !== deps.bucket)
    throw new GpulabError('VALIDATION', `model.pretrained must be in bucket "${deps.bucket}"`, {
      field: 'model.pretrained',
    });

  const m = await resolveMembership(deps, who, group);
  checkPriority(who, m.role, priority);
  const flavor = await deps.db.flavor.findUnique({ where: { name: spec.resources.flavor } });
  if (!flavor)
    throw new GpulabError('VALIDATION', `unknown GPU flavor "${spec.resources.flavor}"`, { field: 'resources.flavor' });

  const { id, created } = await createJob(deps.db, {
    userId: who.userId,
    membershipId: m.id,
    groupId: m.groupId,
    spec,
    idempotencyKey,
    at: deps.clock(),
    maxAttempts: deps.maxAttempts,
    maxRuntimeSeconds: maxRuntimeSecondsOf(spec, m.group.defaultMaxHours),
    priority,
  });
  await deps.queue.enqueue(id).catch(() => undefined);
  const view = await getJobView(deps.db, id);
  return { created, job: view! };
}
