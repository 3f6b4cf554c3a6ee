import { type JobStatus, TrainerExit } from '@gpulab/core';
import { issueToken, revokeJobTokens, revokeToken, transition } from '@gpulab/db';
import type { SchedulerDeps } from './deps';
import { recordAttemptEnd } from './finish';
import { attemptName } from './launchers/launcher';

/**
 * Launches every ADMITTED or RETRYING job: CAS to LAUNCHING with the next attempt number, an attempt row, a fresh
 * job-scoped token (older attempts' tokens revoked), then the launcher; RUNNING once the process or pod runs.
 */
export async function launchReady(deps: SchedulerDeps): Promise<void> {
  const ready = await deps.db.job.findMany({
    where: { status: { in: ['ADMITTED', 'RETRYING'] } },
    orderBy: { admittedAt: 'asc' },
  });
  for (const job of ready) await launchOne(deps, job.id, job.status, job.attempt);
}

async function launchOne(deps: SchedulerDeps, jobId: string, from: JobStatus, prevAttempt: number) {
  const { db, clock, log } = deps;
  const attempt = prevAttempt + 1;
  const name = attemptName(jobId, attempt);
  const ok = await transition(db, {
    jobId,
    from,
    to: 'LAUNCHING',
    reason: 'launched',
    message: `attempt ${attempt} (${name})`,
    at: clock(),
    data: { attempt },
  });
  if (!ok) return;
  const job = await db.job.findUniqueOrThrow({ where: { id: jobId } });
  await db.jobAttempt.upsert({
    where: { jobId_attempt: { jobId, attempt } },
    create: { jobId, attempt, launcher: deps.launcher.kind, handle: name },
    update: {},
  });
  await startAttempt(deps, job, attempt, name);
  log.info({ jobId, attempt }, 'attempt launching');
}

/**
 * Starts (or re-starts, idempotently by name) the process of a LAUNCHING attempt and marks it RUNNING. The attempt
 * gets a fresh job-scoped token and older ones are revoked — unless the launcher adopted a process that already
 * ran under this name: that process keeps the token it was started with, and the new one is revoked instead.
 */
export async function startAttempt(
  deps: SchedulerDeps,
  job: { id: string; userId: string; spec: unknown; flavor: string; gpus: number; maxRuntimeSeconds?: number },
  attempt: number,
  name: string,
): Promise<void> {
  const { db, clock } = deps;
  const token = await issueToken(db, { userId: job.userId, name: name, scope: 'job', jobId: job.id });
  let startedAt: Date;
  let adopted: boolean;
  try {
    ({ startedAt, adopted } = await deps.launcher.launch({
      jobId: job.id,
      attempt,
      name,
      flavor: job.flavor,
      gpus: job.gpus,
      userId: job.userId,
      ...(job.maxRuntimeSeconds ? { maxRuntimeSeconds: job.maxRuntimeSeconds } : {}),
      env: {
        ...deps.trainerEnv,
        GPULAB_JOB_ID: job.id,
        GPULAB_ATTEMPT: String(attempt),
        GPULAB_JOB_SPEC: JSON.stringify(job.spec),
        GPULAB_JOB_TOKEN: token.secret,
      },
    }));
  } catch (e) {
    await revokeToken(db, token.id, clock());
    deps.log.error({ jobId: job.id, attempt, err: e }, 'launch failed');
    await recordAttemptEnd(deps, {
      jobId: job.id,
      attempt,
      code: TrainerExit.INFRASTRUCTURE_ERROR,
      signal: null,
      endedAt: clock(),
      tail: `error: launch failed: ${(e as Error).message}`,
    });
    return;
  }
  if (adopted) await revokeToken(db, token.id, clock());
  else await revokeJobTokens(db, job.id, clock(), token.id);
  await db.jobAttempt.updateMany({ where: { jobId: job.id, attempt, startedAt: null }, data: { startedAt } });
  await transition(db, {
    jobId: job.id,
    from: 'LAUNCHING',
    to: 'RUNNING',
    reason: 'started',
    message: `attempt ${attempt} running`,
    at: startedAt,
  });
  await db.job.updateMany({ where: { id: job.id, startedAt: null }, data: { startedAt } });
}
