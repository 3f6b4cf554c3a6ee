import { type Job as BullJob, DelayedError, Queue, Worker } from 'bullmq';
import IORedis, { type Redis } from 'ioredis';
import { z } from 'zod';

/**
 * BullMQ is how the API hands a job to the scheduler; Postgres stays the truth. Each gpulab job has at most one
 * BullMQ entry, whose id is the gpulab job id (re-adding is a no-op while it exists); it stays (delayed) while the
 * job waits in QUEUED and completes once the job leaves QUEUED. The reconciler re-adds entries lost with Redis.
 */
export const DISPATCH_QUEUE = 'dispatch';

export const DispatchPayloadSchema = z.object({ jobId: z.string().uuid() });
export type DispatchPayload = z.infer<typeof DispatchPayloadSchema>;

export function createRedis(url: string): Redis {
  return new IORedis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
}

export class DispatchQueue {
  readonly queue: Queue<DispatchPayload>;
  constructor(connection: Redis, prefix: string) {
    this.queue = new Queue<DispatchPayload>(DISPATCH_QUEUE, { connection, prefix });
  }

  /** Idempotent: the BullMQ job id is the gpulab job id. */
  async enqueue(jobId: string): Promise<void> {
    await this.queue.add('dispatch', { jobId }, { jobId, removeOnComplete: true, removeOnFail: { count: 1000 } });
  }

  async has(jobId: string): Promise<boolean> {
    return (await this.queue.getJob(jobId)) != null;
  }

  async remove(jobId: string): Promise<void> {
    await this.queue.remove(jobId).catch(() => undefined);
  }

  async depth(): Promise<number> {
    const c = await this.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
    return Object.values(c).reduce((s, n) => s + n, 0);
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

export type DispatchDecision = 'done' | { retryAt: number };

/**
 * Consumes dispatch entries. The handler returns 'done' when the job has left QUEUED (admitted, cancelled, failed),
 * or a time to look again: the entry is then delayed, not failed, so waiting for quota never burns BullMQ attempts.
 */
export function createDispatchWorker(
  connection: Redis,
  prefix: string,
  handler: (payload: DispatchPayload) => Promise<DispatchDecision>,
): Worker<DispatchPayload> {
  return new Worker<DispatchPayload>(
    DISPATCH_QUEUE,
    async (job: BullJob<DispatchPayload>, token?: string) => {
      const payload = DispatchPayloadSchema.parse(job.data);
      const decision = await handler(payload);
      if (decision === 'done') return;
      await job.moveToDelayed(decision.retryAt, token);
      throw new DelayedError();
    },
    { connection, prefix, concurrency: 4, autorun: true },
  );
}
export * from './logs';
