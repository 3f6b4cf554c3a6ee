import type { Artifact, CostLedger, Job, JobAttempt, JobMetric, JobTransition } from '@prisma/client';
import type { Db } from './client';

const micros = (v: bigint | number) => Number(v);

/** The columns and relations a job view is made of. */
export type ViewedJob = Pick<
  Job,
  | 'id'
  | 'userId'
  | 'groupId'
  | 'name'
  | 'status'
  | 'statusReason'
  | 'statusMessage'
  | 'pendingReason'
  | 'pendingMessage'
  | 'queuePosition'
  | 'estimatedStartAt'
  | 'priority'
  | 'maxRuntimeSeconds'
  | 'reservationId'
  | 'attempt'
  | 'maxAttempts'
  | 'flavor'
  | 'gpus'
  | 'backend'
  | 'spec'
  | 'createdAt'
  | 'admittedAt'
  | 'startedAt'
  | 'finishedAt'
  | 'heldSeconds'
  | 'metricsSummary'
> & {
  transitions: Pick<JobTransition, 'from' | 'to' | 'reason' | 'message' | 'at'>[];
  metrics: Pick<
    JobMetric,
    | 'attempt'
    | 'epoch'
    | 'epochs'
    | 'trainLoss'
    | 'valLoss'
    | 'valAcc'
    | 'lr'
    | 'seconds'
    | 'perClassAcc'
    | 'confusion'
    | 'at'
  >[];
  artifacts: Pick<Artifact, 'kind' | 'key' | 'bytes'>[];
  ledger: Pick<CostLedger, 'hourStart' | 'gpuSeconds' | 'rateMicros' | 'amountMicros' | 'closed'>[];
  attempts: Pick<
    JobAttempt,
    'attempt' | 'launcher' | 'handle' | 'startedAt' | 'endedAt' | 'exitCode' | 'signal' | 'charged' | 'outcome'
  >[];
};

/** The job as the API shows it: status, transitions, per-epoch metrics, artifacts and cost so far. */
export async function getJobView(db: Db, jobId: string) {
  const job = await db.job.findUnique({
    where: { id: jobId },
    include: {
      transitions: { orderBy: { id: 'asc' } },
      metrics: { orderBy: { epoch: 'asc' } },
      artifacts: { orderBy: { createdAt: 'asc' } },
      ledger: { orderBy: { hourStart: 'asc' } },
      attempts: { orderBy: { attempt: 'asc' } },
    },
  });
  return job ? toJobView(job) : null;
}

/**
 * The view of a job from its row and relations (no I/O): `getJobView` reads them; job submission passes the rows it
 * has just inserted, so its 201 is the same shape without a second read.
 */
export function toJobView(job: ViewedJob) {
  const gpuSeconds = job.ledger.reduce((s, r) => s + r.gpuSeconds, 0);
  const amountMicros = job.ledger.reduce((s, r) => s + micros(r.amountMicros), 0);
  return {
    id: job.id,
    userId: job.userId,
    groupId: job.groupId,
    name: job.name,
    status: job.status,
    statusReason: job.statusReason,
    statusMessage: job.statusMessage,
    pending:
      job.status === 'QUEUED' && job.pendingReason
        ? {
            reason: job.pendingReason,
            message: job.pendingMessage,
            position: job.queuePosition,
            estimatedStartAt: job.estimatedStartAt?.toISOString() ?? null,
          }
        : null,
    priority: job.priority,
    maxRuntimeSeconds: job.maxRuntimeSeconds,
    reservationId: job.reservationId,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    flavor: job.flavor,
    gpus: job.gpus,
    backend: job.backend,
    spec: job.spec,
    createdAt: job.createdAt.toISOString(),
    admittedAt: job.admittedAt?.toISOString() ?? null,
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    hold: { gpuSeconds: job.heldSeconds, gpuHours: job.heldSeconds / 3600 },
    cost: {
      gpuSeconds,
      gpuHours: gpuSeconds / 3600,
      amountMicros,
      amount: amountMicros / 1e6,
      ledger: job.ledger.map((r) => ({
        hourStart: r.hourStart.toISOString(),
        gpuSeconds: r.gpuSeconds,
        rateMicrosPerHour: micros(r.rateMicros),
        amountMicros: micros(r.amountMicros),
        closed: r.closed,
      })),
    },
    summary: job.metricsSummary,
    transitions: job.transitions.map((t) => ({
      from: t.from,
      to: t.to,
      reason: t.reason,
      message: t.message,
      at: t.at.toISOString(),
    })),
    attempts: job.attempts.map((a) => ({
      attempt: a.attempt,
      launcher: a.launcher,
      handle: a.handle,
      startedAt: a.startedAt?.toISOString() ?? null,
      endedAt: a.endedAt?.toISOString() ?? null,
      exitCode: a.exitCode,
      signal: a.signal,
      charged: a.charged,
      outcome: a.outcome,
    })),
    metrics: job.metrics.map((m) => ({
      attempt: m.attempt,
      epoch: m.epoch,
      epochs: m.epochs,
      trainLoss: m.trainLoss,
      valLoss: m.valLoss,
      valAcc: m.valAcc,
      lr: m.lr,
      seconds: m.seconds,
      perClassAcc: m.perClassAcc,
      confusion: m.confusion,
      at: m.at.toISOString(),
    })),
    artifacts: job.artifacts.map((a) => ({ kind: a.kind, key: a.key, bytes: a.bytes })),
  };
}
export type JobView = ReturnType<typeof toJobView>;
