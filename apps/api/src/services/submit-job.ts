import { fastJobSpec, GpulabError, type JobSpec, JobSpecSchema, maxRuntimeSecondsOf } from '@gpulab/core';
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

const NUL_MESSAGE = 'must not contain NUL characters (\\u0000)';

/**
 * A job spec plus where it runs: `group` (name or id; default the caller's first) and `priority` (higher first).
 * Postgres stores no NUL character in text or JSON, so one anywhere in the body is a 400 naming where it is.
 */
export const SubmitBodySchema = z
  .object({
    group: z
      .string()
      .min(1)
      .max(200)
      .refine((g) => !g.includes('\u0000'), NUL_MESSAGE)
      .optional(),
    priority: z.number().int().min(-1000).max(1000).default(0),
  })
  .passthrough()
  .transform(({ group, priority, ...body }, ctx) => {
    const spec = JobSpecSchema.parse(body);
    const nul = nulPath(spec);
    if (nul) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: nul, message: NUL_MESSAGE });
      return z.NEVER;
    }
    return { group, priority, spec };
  });

export interface SubmitBody {
  group: string | undefined;
  priority: number;
  spec: JobSpec;
}

/**
 * `SubmitBodySchema.parse`: a valid body through the fast check of the spec (fastJobSpec, ~10× cheaper than zod),
 * anything else through the schema, which accepts it or throws the same ZodError as ever, so every error message and
 * field is the schema's (property test comparing the two: apps/api/test/unit/submit-body.test.ts).
 */
export function parseSubmitBody(body: unknown): SubmitBody {
  return fastSubmitBody(body) ?? SubmitBodySchema.parse(body);
}

const NOT_SPEC: ReadonlySet<string> = new Set(['group', 'priority']);

/** The parsed body when it is surely valid, else null (the schema decides). */
export function fastSubmitBody(body: unknown): SubmitBody | null {
  if (typeof body !== 'object' || body === null) return null;
  const { group, priority } = body as { group?: unknown; priority?: unknown };
  if (group !== undefined && !(typeof group === 'string' && group.length >= 1 && group.length <= 200)) return null;
  if (typeof group === 'string' && group.includes('\u0000')) return null;
  if (priority !== undefined && !(Number.isInteger(priority) && Math.abs(priority as number) <= 1000)) return null;
  const spec = fastJobSpec(body, NOT_SPEC); // plain objects only; no NUL anywhere in what it accepts
  return spec && { group, priority: (priority as number | undefined) ?? 0, spec };
}

/** Where the first NUL character is in a parsed JSON value (a key or a string), or null; allocates only on a find. */
function nulPath(v: unknown): (string | number)[] | null {
  if (typeof v === 'string') return v.includes('\u0000') ? [] : null;
  if (typeof v !== 'object' || v === null) return null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = nulPath(v[i]);
      if (p) return [i, ...p];
    }
    return null;
  }
  for (const k in v) {
    if (k.includes('\u0000')) return [k];
    const p = nulPath((v as Record<string, unknown>)[k]);
    if (p) return [k, ...p];
  }
  return null;
}

/**
 * Creates a QUEUED job (durable in Postgres first: the job and its first transition in one statement, committed
 * before this returns) and hands it to the scheduler through the dispatch queue. An Idempotency-Key makes retries of
 * the same request safe. The queue entry is idempotent too; if Redis is down the job is still accepted, and the
 * scheduler's reconciler enqueues it later. The hot path is one insert (shared with submissions arriving at the same
 * time, see createJob) and one Redis call; the token and the membership + flavor lookups are each one query, reused
 * for a few seconds (bearer-cache.ts, membership.ts). The 201 is built from the inserted rows, not read back.
 */
export async function submitJob(deps: ApiDeps, who: Principal, body: unknown, idempotencyKey: string | null) {
  if (idempotencyKey !== null && !/^[\x21-\x7e]{1,200}$/.test(idempotencyKey))
    throw new GpulabError('VALIDATION', 'Idempotency-Key must be 1-200 visible ASCII characters', {
      field: 'Idempotency-Key',
    });
  const { group, priority, spec } = parseSubmitBody(await resolveDatasetRef(deps, who, body ?? {}));
  const loc = parseS3Uri(spec.dataset.uri);
  if (loc.bucket !== deps.bucket)
    throw new GpulabError('VALIDATION', `dataset.uri must be in bucket "${deps.bucket}"`, { field: 'dataset.uri' });
  if (spec.model.pretrained && parseS3Uri(spec.model.pretrained).bucket !== deps.bucket)
    throw new GpulabError('VALIDATION', `model.pretrained must be in bucket "${deps.bucket}"`, {
      field: 'model.pretrained',
    });

  const m = await resolveMembership(deps, who, group, spec.resources.flavor);
  checkPriority(who, m.role, priority);
  if (!m.flavorKnown)
    throw new GpulabError('VALIDATION', `unknown GPU flavor "${spec.resources.flavor}"`, { field: 'resources.flavor' });

  const res = await createJob(deps.db, {
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
  await deps.queue.enqueue(res.id).catch(() => undefined);
  // A new job is shown from the rows just inserted; a repeated key shows the first job as it is now.
  const job = res.created ? res.view : await getJobView(deps.db, res.id);
  if (!job) throw new GpulabError('NOT_FOUND', `job ${res.id} not found`);
  return { created: res.created, job };
}
