import { GpulabError, isTerminal } from '@gpulab/core';
import { finishJob, getJobView } from '@gpulab/db';
import type { ApiDeps } from '../deps';

/**
 * Cancels a job. A job with no process is finished here (QUEUED/ADMITTED/RETRYING -> CANCELLED, hold settled against
 * what it was charged and the rest released); a launching or running one gets `stop_requested = cancelled`, and the
 * scheduler stops it after a checkpoint. A RETRYING job is between attempts: finishing it here keeps the scheduler
 * from launching (and charging) an attempt nobody wants. Safe to call twice; cancelling a finished job is a 409 that
 * names its status.
 */
export async function cancelJob(deps: ApiDeps, jobId: string) {
  for (let i = 0; i < 5; i++) {
    const job = await deps.db.job.findUniqueOrThrow({ where: { id: jobId } });
    if (isTerminal(job.status)) {
      if (job.status === 'CANCELLED') return (await getJobView(deps.db, jobId))!;
      throw new GpulabError('CONFLICT', `job already ended as ${job.status}`, { status: job.status });
    }
    if (job.status === 'QUEUED' || job.status === 'ADMITTED' || job.status === 'RETRYING') {
      const ok = await finishJob(deps.db, {
        jobId,
        from: job.status,
        to: 'CANCELLED',
        reason: 'cancelled',
        message:
          job.status === 'RETRYING' ? 'cancelled by user between attempts' : 'cancelled by user before it started',
        at: deps.clock(),
      });
      if (ok) {
        await deps.queue.remove(jobId);
        return (await getJobView(deps.db, jobId))!;
      }
      continue; // lost a race with the scheduler: re-read
    }
    const n = await deps.db.job.updateMany({
      where: { id: jobId, status: job.status, stopRequested: null },
      data: { stopRequested: 'cancelled' },
    });
    if (n.count === 1 || job.stopRequested === 'cancelled') return (await getJobView(deps.db, jobId))!;
  }
  throw new GpulabError('CONFLICT', 'job is changing state; try again');
}
