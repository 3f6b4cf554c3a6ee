import { isDeepStrictEqual } from 'node:util';
import { GpulabError, type JobSpec } from '@gpulab/core';
import { Prisma } from '@prisma/client';
import type { Db } from './client';

export interface CreateJobInput {
  userId: string;
  membershipId: string;
  groupId: string;
  spec: JobSpec;
  idempotencyKey?: string | null;
  at: Date;
  maxAttempts: number;
  /** Resolved max runtime (the spec's maxHours or the group's default). */
  maxRuntimeSeconds: number;
  /** Admission priority, higher first (0 unless an instructor or admin sets it). */
  priority?: number;
}

/**
 * Inserts a QUEUED job with its first transition row. With an idempotency key, a second call with the same key
 * returns the first job (`created: false`) when the spec is the same, and fails with IDEMPOTENCY_MISMATCH otherwise.
 */
export async function createJob(db: Db, input: CreateJobInput): Promise<{ id: string; created: boolean }> {
  const specJson = input.spec as unknown as Prisma.InputJsonValue;
  try {
    const job = await db.$transaction(async (tx) => {
      const j = await tx.job.create({
        data: {
          userId: input.userId,
          membershipId: input.membershipId,
          groupId: input.groupId,
          name: input.spec.name ?? null,
          spec: specJson,
          flavor: input.spec.resources.flavor,
          gpus: input.spec.resources.gpus,
          idempotencyKey: input.idempotencyKey ?? null,
          maxAttempts: input.maxAttempts,
          maxRuntimeSeconds: input.maxRuntimeSeconds,
          priority: input.priority ?? 0,
          createdAt: input.at,
        },
      });
      await tx.jobTransition.create({
        data: { jobId: j.id, from: null, to: 'QUEUED', reason: 'submitted', at: input.at },
      });
      return j;
    });
    return { id: job.id, created: true };
  } catch (e) {
    if (input.idempotencyKey && e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') {
      const existing = await db.job.findUnique({
        where: { userId_idempotencyKey: { userId: input.userId, idempotencyKey: input.idempotencyKey } },
      });
      if (!existing) throw e;
      if (!isDeepStrictEqual(existing.spec, JSON.parse(JSON.stringify(input.spec))))
        throw new GpulabError('IDEMPOTENCY_MISMATCH', 'Idempotency-Key was already used for a different request body', {
          field: 'Idempotency-Key',
          jobId: existing.id,
        });
      return { id: existing.id, created: false };
    }
    throw e;
  }
}

/** GPU-seconds held at admission: max runtime × GPUs. */
export function holdSecondsOf(job: { maxRuntimeSeconds: number; gpus: number }): number {
  return job.maxRuntimeSeconds * job.gpus;
}

const micros = (v: bigint | number) => Number(v);

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
  if (!job) return null;
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
export type JobView = NonNullable<Awaited<ReturnType<typeof getJobView>>>;
