import { HOLDING_STATUSES, JobSpecSchema } from '@gpulab/core';
import { admitJob, balanceOf, holdSecondsOf } from '@gpulab/db';
import type { SchedulerDeps } from './deps';

const fmtH = (s: number) => `${(s / 3600).toFixed(2)} GPU-h`;

/**
 * One admission pass over the jobs waiting in QUEUED, oldest first: a job is admitted when a GPU of its flavor is
 * free and its owner's quota covers `maxHours × gpus` — the hold is taken in the same transaction that moves it to
 * ADMITTED. A job that cannot be admitted gets a pending reason a person can read. Returns the ids admitted.
 */
export async function admissionPass(deps: SchedulerDeps): Promise<string[]> {
  const { db } = deps;
  const capacity = await deps.launcher.capacity();
  const active = await db.job.groupBy({
    by: ['flavor'],
    where: { status: { in: [...HOLDING_STATUSES] } },
    _sum: { gpus: true },
  });
  const free = new Map(Object.entries(capacity));
  for (const a of active) free.set(a.flavor, (free.get(a.flavor) ?? 0) - (a._sum.gpus ?? 0));

  const queued = await db.job.findMany({
    where: { status: 'QUEUED' },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    include: { group: { select: { name: true } } },
    take: 1000,
  });
  const admitted: string[] = [];
  for (const job of queued) {
    const spec = JobSpecSchema.safeParse(job.spec);
    if (!spec.success) continue; // validated at submission; a stored spec never fails here
    const hold = holdSecondsOf(spec.data);
    const freeGpus = free.get(job.flavor) ?? 0;
    if (!capacity[job.flavor]) {
      await setPending(deps, job, 'capacity', `no launcher offers GPU flavor "${job.flavor}"`);
      continue;
    }
    if (freeGpus < job.gpus) {
      await setPending(
        deps,
        job,
        'capacity',
        `waiting for ${job.gpus} free ${job.flavor} GPU(s): all ${capacity[job.flavor]} in use`,
      );
      continue;
    }
    const res = await admitJob(db, { id: job.id, membershipId: job.membershipId, holdSeconds: hold }, deps.clock());
    if (res.admitted) {
      free.set(job.flavor, freeGpus - job.gpus);
      admitted.push(job.id);
      deps.log.info({ jobId: job.id, holdSeconds: hold }, 'job admitted');
      continue;
    }
    if (res.reason === 'quota') {
      const m = balanceOf(await db.membership.findUniqueOrThrow({ where: { id: job.membershipId } }));
      await setPending(
        deps,
        job,
        'quota',
        `needs ${fmtH(hold)} (max ${spec.data.resources.maxHours} h × ${job.gpus} GPU); ${fmtH(m.freeSeconds)} free of ` +
          `${fmtH(m.grantedSeconds)} granted in group "${job.group.name}" (${fmtH(m.heldSeconds)} held by running jobs)`,
      );
    }
  }
  return admitted;
}

async function setPending(
  deps: SchedulerDeps,
  job: { id: string; pendingReason: string | null; pendingMessage: string | null },
  reason: string,
  message: string,
) {
  if (job.pendingReason === reason && job.pendingMessage === message) return;
  await deps.db.job.updateMany({
    where: { id: job.id, status: 'QUEUED' },
    data: { pendingReason: reason, pendingMessage: message },
  });
}
