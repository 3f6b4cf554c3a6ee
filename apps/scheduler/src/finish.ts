import { PutObjectCommand } from '@aws-sdk/client-s3';
import { outcomeOfExit, type TransitionReason } from '@gpulab/core';
import { chargedIntervals, finishJob, meterJob, revokeJobTokens, transition } from '@gpulab/db';
import { layout } from '@gpulab/storage';
import type { SchedulerDeps } from './deps';
import { attemptName } from './launchers/launcher';

export interface AttemptEnd {
  jobId: string;
  attempt: number;
  code: number | null;
  signal: string | null;
  endedAt: Date;
  tail: string;
}

/**
 * What happens when an attempt ends: the attempt row records it; infrastructure failures are charged only up to
 * the attempt's last checkpoint and retried while attempts remain; everything else finishes the job, settling its
 * hold against the metered cost. Idempotent and resumable: the steps are separate writes, so a scheduler killed
 * between them leaves an attempt already marked ended while its job is still LAUNCHING or RUNNING — the next call
 * (from recovery) finds the recorded end and completes the job's part; each job step is a compare-and-set.
 */
export async function recordAttemptEnd(deps: SchedulerDeps, reported: AttemptEnd): Promise<void> {
  const { db } = deps;
  const job = await db.job.findUniqueOrThrow({ where: { id: reported.jobId } });
  if (job.attempt !== reported.attempt) return;
  if (job.status !== 'LAUNCHING' && job.status !== 'RUNNING') return;
  // an attempt row is written right after the job enters LAUNCHING; a crash in between leaves none: make it now
  const att = await db.jobAttempt.upsert({
    where: { jobId_attempt: { jobId: reported.jobId, attempt: reported.attempt } },
    create: {
      jobId: reported.jobId,
      attempt: reported.attempt,
      launcher: deps.launcher.kind,
      handle: attemptName(reported.jobId, reported.attempt),
    },
    update: {},
  });
  const end: AttemptEnd = att.endedAt
    ? { ...reported, code: att.exitCode, signal: att.signal, endedAt: att.endedAt }
    : reported;
  const stop = (job.stopRequested ?? null) as 'cancelled' | 'timed_out' | 'budget_exhausted' | null;
  const out = outcomeOfExit(end.code, end.signal, stop);

  if (!att.endedAt) {
    let chargedUntil: Date | null = null;
    let charged = out.charge;
    if (!out.charge && out.reason === 'infrastructure_error' && att.startedAt) {
      const lastCheckpoint = await db.jobEvent.findFirst({
        where: { jobId: end.jobId, attempt: end.attempt, type: 'checkpoint' },
        orderBy: { id: 'desc' },
      });
      if (lastCheckpoint) {
        charged = true;
        chargedUntil = lastCheckpoint.at;
      }
    }
    const n = await db.jobAttempt.updateMany({
      where: { id: att.id, endedAt: null },
      data: {
        endedAt: end.endedAt,
        exitCode: end.code,
        signal: end.signal,
        charged,
        chargedUntil,
        outcome: out.reason,
      },
    });
    if (n.count === 0) return; // another caller recorded this end first and goes on from here
  }
  await finishAttempt(deps, job, end, out);
}

async function finishAttempt(
  deps: SchedulerDeps,
  job: { status: string; attempt: number; maxAttempts: number },
  end: AttemptEnd,
  out: ReturnType<typeof outcomeOfExit>,
): Promise<void> {
  const { db, log } = deps;
  await meter(deps, end.jobId, end.endedAt);
  // off the control loop: a slow or unreachable S3 must not hold up scheduling (archiving is idempotent)
  void archiveLog(deps, end.jobId, end.attempt);
  const failed = await db.jobEvent.findFirst({
    where: { jobId: end.jobId, attempt: end.attempt, type: 'failed' },
    orderBy: { id: 'desc' },
  });
  const reported = failed ? String((failed.data as { message?: unknown }).message ?? '') : null;
  const message = describeEnd(end, out.reason, reported);

  if (out.retryable && job.attempt < job.maxAttempts) {
    const from = job.status === 'LAUNCHING' ? 'LAUNCHING' : 'RUNNING';
    const ok = await transition(db, {
      jobId: end.jobId,
      from,
      to: 'RETRYING',
      reason: 'infrastructure_error',
      message: `${message}; retrying from the last checkpoint (attempt ${job.attempt + 1} of ${job.maxAttempts})`,
      at: end.endedAt,
    });
    if (ok) log.warn({ jobId: end.jobId, attempt: end.attempt, code: end.code }, 'attempt failed; will retry');
    return;
  }
  const to = out.retryable ? 'FAILED' : out.status;
  const reason: TransitionReason = out.retryable ? 'retries_exhausted' : out.reason;
  for (const from of ['RUNNING', 'LAUNCHING'] as const) {
    if (job.status !== from) continue;
    const ok = await finishJob(db, { jobId: end.jobId, from, to, reason, message, at: end.endedAt });
    if (ok) {
      await revokeJobTokens(db, end.jobId, end.endedAt);
      log.info({ jobId: end.jobId, status: to, reason }, 'job finished');
    }
  }
}

function describeEnd(end: AttemptEnd, reason: TransitionReason, reported: string | null): string {
  const how = end.signal ? `killed by ${end.signal}` : `exit code ${end.code}`;
  if (reason === 'completed') return 'training finished';
  const why = reported || lastErrorLine(end.tail);
  if (reason === 'user_error') return `the job cannot run as submitted: ${why ?? how}`;
  return `attempt ${end.attempt} ended (${how})${why ? `: ${why.slice(0, 500)}` : ''}`;
}

/**
 * The last error the trainer logged: a pino JSON line at level error or above (its `msg`), or a plain
 * `error: …` line.
 */
export function lastErrorLine(tail: string): string | null {
  const lines = tail
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .reverse();
  for (const line of lines) {
    if (line.startsWith('{')) {
      try {
        const rec = JSON.parse(line) as { level?: unknown; msg?: unknown };
        const level =
          typeof rec.level === 'number' ? rec.level : rec.level === 'error' || rec.level === 'fatal' ? 50 : 0;
        if (level >= 50 && typeof rec.msg === 'string') return rec.msg;
      } catch {
        // not JSON: fall through
      }
    }
    if (line.startsWith('error: ')) return line.slice('error: '.length);
  }
  return null;
}

/** Writes the job's hourly cost rows from its charged attempts, capped at its hold. */
export async function meter(deps: SchedulerDeps, jobId: string, now: Date) {
  const job = await deps.db.job.findUniqueOrThrow({ where: { id: jobId } });
  const flavor = await deps.db.flavor.findUnique({ where: { name: job.flavor } });
  return meterJob(deps.db, {
    jobId,
    gpus: job.gpus,
    rateMicrosPerHour: Number(flavor?.rateMicros ?? 0n),
    capSeconds: job.heldSeconds,
    intervals: await chargedIntervals(deps.db, jobId, now),
    now,
  });
}

/**
 * Copies an ended attempt's output from the live log bus to S3, where it outlives Redis (the stream keeps about the
 * last 20,000 chunks: the archive of a very chatty attempt is its tail). Idempotent (same key, same content);
 * a failure is logged, never fatal — the job's outcome does not depend on its log.
 */
export async function archiveLog(deps: SchedulerDeps, jobId: string, attempt: number): Promise<void> {
  if (!deps.logs || !deps.archive) return;
  try {
    const entries = (await deps.logs.read(jobId)).filter((e) => e.attempt === attempt);
    const body = Buffer.from(entries.map((e) => e.text).join(''), 'utf8');
    await deps.archive.s3.send(
      new PutObjectCommand({
        Bucket: deps.archive.bucket,
        Key: layout.logs(jobId, attempt),
        Body: body,
        ContentLength: body.length,
        ContentType: 'text/plain; charset=utf-8',
      }),
    );
    await deps.logs.expire(jobId, 24 * 3600);
  } catch (e) {
    deps.log.warn({ err: e, jobId, attempt }, 'could not archive the attempt log');
  }
}
