import type { SchedulerDeps } from './deps';
import { attemptName } from './launchers/launcher';

/**
 * Stops attempts the launcher runs that the database does not consider live: the pod of a job that already ended
 * or moved on to a later attempt (a stop that was lost, a scheduler that died between deciding and deleting, a
 * pod created by hand with gpulab's labels). The launcher's list is read before the database: a launch writes its
 * LAUNCHING row before it starts anything, so a just-launched attempt is never taken for an orphan. Its exit, if
 * reported, is ignored by finish.ts (the attempt is not the job's current one, or has ended already).
 */
export async function stopOrphans(deps: SchedulerDeps): Promise<string[]> {
  const running = await deps.launcher.running();
  if (!running.length) return [];
  const live = await deps.db.job.findMany({
    where: { status: { in: ['LAUNCHING', 'RUNNING'] } },
    select: { id: true, attempt: true },
  });
  const wanted = new Set(live.map((j) => attemptName(j.id, j.attempt)));
  const orphans = running.filter((name) => !wanted.has(name));
  for (const name of orphans) {
    deps.log.warn({ attempt: name }, 'stopping an attempt the database does not know as live');
    await deps.launcher.stop(name, deps.stopGraceMs);
  }
  return orphans;
}
