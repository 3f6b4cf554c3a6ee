import { GpulabError, JOB_STATUSES, type JobStatus } from '@gpulab/core';
import { findUserByEmail, getJobView, type Principal } from '@gpulab/db';
import type { Prisma } from '@prisma/client';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { managedGroupIds } from './group-access';
import { IsoDate } from './iso-date';

/**
 * Who may see a job: its owner, an admin, or an instructor of the job's group (they may also cancel it — recorded
 * in the audit log). Anyone else gets a 404, so a job's existence is not revealed.
 */
export async function visibleJobView(deps: ApiDeps, who: Principal, id: string) {
  const view = await getJobView(deps.db, id);
  if (!view) throw new GpulabError('NOT_FOUND', `job ${id} not found`);
  if (view.userId === who.userId || who.role === 'admin') return view;
  const managed = await managedGroupIds(deps.db, who.userId);
  if (managed.includes(view.groupId)) return view;
  throw new GpulabError('NOT_FOUND', `job ${id} not found`);
}

const statusList = z.string().transform((s, ctx) => {
  const list = s
    .split(',')
    .map((x) => x.trim().toUpperCase())
    .filter(Boolean);
  const bad = list.filter((x) => !(JOB_STATUSES as readonly string[]).includes(x));
  if (bad.length) {
    ctx.addIssue({ code: 'custom', message: `unknown status ${bad.join(', ')}; use ${JOB_STATUSES.join(', ')}` });
    return z.NEVER;
  }
  return list as JobStatus[];
});

export const JobListQuery = z
  .object({
    status: statusList.optional().describe('comma-separated statuses, e.g. QUEUED,RUNNING'),
    user: z
      .string()
      .trim()
      .min(1)
      .max(320)
      .optional()
      .describe('user id or email (instructors: their groups; admins: all)'),
    group: z.string().uuid('must be a group id').optional(),
    flavor: z.string().trim().min(1).max(32).optional(),
    from: IsoDate.optional().describe('submitted at or after'),
    to: IsoDate.optional().describe('submitted before'),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: z.string().min(1).max(200).optional().describe('nextCursor of the previous page'),
  })
  .strict();

type ListQuery = z.output<typeof JobListQuery>;

/** Newest first, keyset-paginated on (createdAt, id) with an opaque cursor. */
export async function listJobs(deps: ApiDeps, who: Principal, q: ListQuery) {
  const where: Prisma.JobWhereInput[] = [await scopeOf(deps, who, q)];
  if (q.status) where.push({ status: { in: q.status } });
  if (q.group) where.push({ groupId: q.group });
  if (q.flavor) where.push({ flavor: q.flavor });
  if (q.from) where.push({ createdAt: { gte: q.from } });
  if (q.to) where.push({ createdAt: { lt: q.to } });
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    where.push({ OR: [{ createdAt: { lt: c.at } }, { createdAt: c.at, id: { lt: c.id } }] });
  }
  const rows = await deps.db.job.findMany({
    where: { AND: where },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: q.limit + 1,
    select: {
      id: true,
      name: true,
      userId: true,
      groupId: true,
      flavor: true,
      gpus: true,
      status: true,
      statusReason: true,
      pendingReason: true,
      queuePosition: true,
      estimatedStartAt: true,
      createdAt: true,
      startedAt: true,
      finishedAt: true,
      costMicros: true,
      usedSeconds: true,
    },
  });
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((j) => ({
      ...j,
      costMicros: Number(j.costMicros),
      createdAt: j.createdAt.toISOString(),
      startedAt: j.startedAt?.toISOString() ?? null,
      finishedAt: j.finishedAt?.toISOString() ?? null,
      estimatedStartAt: j.estimatedStartAt?.toISOString() ?? null,
    })),
    nextCursor: rows.length > q.limit && last ? encodeCursor(last.createdAt, last.id) : null,
  };
}

/** Own jobs by default; `user=` another user's needs admin, or instructor of a group they share (only those jobs). */
async function scopeOf(deps: ApiDeps, who: Principal, q: ListQuery): Promise<Prisma.JobWhereInput> {
  if (!q.user)
    return who.role === 'admin' && q.group
      ? {}
      : q.group
        ? await groupScope(deps, who, q.group)
        : { userId: who.userId };
  const userId = z.string().uuid().safeParse(q.user).success ? q.user : (await findUserByEmail(deps.db, q.user))?.id;
  if (!userId) throw new GpulabError('NOT_FOUND', `user ${q.user} not found`, { field: 'user' });
  if (userId === who.userId || who.role === 'admin') return { userId };
  const managed = await managedGroupIds(deps.db, who.userId);
  if (managed.length === 0)
    throw new GpulabError('FORBIDDEN', "only instructors and admins can list other users' jobs", { field: 'user' });
  return { userId, groupId: { in: managed } };
}

async function groupScope(deps: ApiDeps, who: Principal, groupId: string): Promise<Prisma.JobWhereInput> {
  const managed = await managedGroupIds(deps.db, who.userId);
  return managed.includes(groupId) ? { groupId } : { userId: who.userId, groupId };
}

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(JSON.stringify([at.toISOString(), id])).toString('base64url');
}

function decodeCursor(c: string): { at: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as [string, string];
    const d = new Date(at);
    if (Number.isNaN(d.getTime()) || !z.string().uuid().safeParse(id).success) throw new Error('bad');
    return { at: d, id };
  } catch {
    throw new GpulabError('VALIDATION', 'cursor is not one this API returned', { field: 'cursor' });
  }
}
