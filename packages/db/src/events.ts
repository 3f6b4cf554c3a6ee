import type { Prisma } from '@prisma/client';
import { z } from 'zod';
import type { Db } from './client';

/** Events a trainer reports with its job-scoped token. */
export const TrainerEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started'), attempt: z.number().int().min(1), backend: z.string().max(40) }),
  z
    .object({
      type: z.literal('dataset'),
      classes: z.array(z.string().max(200)).max(10_000),
      trainCount: z.number().int().min(0),
      valCount: z.number().int().min(0),
      skipped: z.union([
        z.number().int().min(0),
        z.array(z.object({ key: z.string().max(1024), reason: z.string().max(500) })).max(10_000),
      ]),
    })
    .passthrough(),
  z
    .object({
      type: z.literal('epoch'),
      attempt: z.number().int().min(1),
      epoch: z.number().int().min(1),
      epochs: z.number().int().min(1),
      trainLoss: z.number(),
      valLoss: z.number(),
      valAcc: z.number().min(0).max(1),
      lr: z.number().optional(),
      seconds: z.number().optional(),
      perClassAcc: z.array(z.number().nullable()).max(10_000).optional(),
      confusion: z.array(z.array(z.number().int())).max(10_000).optional(),
    })
    .passthrough(),
  z.object({
    type: z.literal('checkpoint'),
    attempt: z.number().int().min(1),
    epoch: z.number().int().min(1),
    key: z.string().max(1024),
  }),
  z.object({
    type: z.literal('artifact'),
    kind: z.enum(['model', 'metrics', 'checkpoint', 'log']),
    key: z.string().max(1024),
    bytes: z.number().int().min(0).optional(),
  }),
  /** The trainer's own account of why it is about to exit with an error: shown as the job's status message. */
  z.object({
    type: z.literal('failed'),
    kind: z.enum(['user_error', 'infrastructure_error']),
    message: z.string().max(4000),
  }),
  z
    .object({ type: z.literal('finished'), bestEpoch: z.number().int().min(0), bestValAcc: z.number().min(0).max(1) })
    .passthrough(),
]);
export type TrainerEvent = z.infer<typeof TrainerEventSchema>;

/**
 * Records a trainer event idempotently: epoch metrics are upserted per (job, epoch) — a resumed attempt that
 * re-reports an epoch replaces it — and artifacts per (job, key).
 */
export async function recordTrainerEvent(db: Db, jobId: string, attempt: number, ev: TrainerEvent, at: Date) {
  const data = ev as unknown as Prisma.InputJsonValue;
  switch (ev.type) {
    case 'epoch': {
      const row = {
        attempt: ev.attempt,
        epochs: ev.epochs,
        trainLoss: ev.trainLoss,
        valLoss: ev.valLoss,
        valAcc: ev.valAcc,
        lr: ev.lr ?? null,
        seconds: ev.seconds ?? null,
        perClassAcc: (ev.perClassAcc ?? undefined) as Prisma.InputJsonValue | undefined,
        confusion: (ev.confusion ?? undefined) as Prisma.InputJsonValue | undefined,
        at,
      };
      await db.jobMetric.upsert({
        where: { jobId_epoch: { jobId, epoch: ev.epoch } },
        create: { jobId, epoch: ev.epoch, ...row },
        update: row,
      });
      return;
    }
    case 'artifact':
      await db.artifact.upsert({
        where: { jobId_key: { jobId, key: ev.key } },
        create: { jobId, kind: ev.kind, key: ev.key, bytes: ev.bytes ?? null },
        update: { kind: ev.kind, bytes: ev.bytes ?? null },
      });
      return;
    case 'checkpoint':
      await db.artifact.upsert({
        where: { jobId_key: { jobId, key: ev.key } },
        create: { jobId, kind: 'checkpoint', key: ev.key },
        update: {},
      });
      await db.jobEvent.create({ data: { jobId, attempt, type: ev.type, data, at } });
      return;
    case 'started':
      await db.job.update({ where: { id: jobId }, data: { backend: ev.backend } });
      await db.jobEvent.create({ data: { jobId, attempt, type: ev.type, data, at } });
      return;
    case 'finished':
      await db.job.update({ where: { id: jobId }, data: { metricsSummary: data } });
      await db.jobEvent.create({ data: { jobId, attempt, type: ev.type, data, at } });
      return;
    default:
      await db.jobEvent.create({ data: { jobId, attempt, type: ev.type, data, at } });
  }
}
