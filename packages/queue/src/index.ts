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

/**
 * A Redis connection that waits for Redis to come back rather than failing commands (BullMQ needs that). Its
 * connection errors are reported once per outage through `onError` (default: ignored — callers bound their waits
 * with DispatchQueue's timeouts), never as unhandled 'error' events.
 */
export function createRedis(url: string, onError?: (e: Error) => void): Redis {
  const r = new IORedis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
  let down = false;
  r.on('error', (e: Error) => {
    if (!down) onError?.(e);
    down = true;
  });
  r.on('ready', () => {
    down = false;
  });
  return r;
}

export class RedisTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`Redis did not answer ${what} within ${ms} ms`);
  }
}

/** `p`, or a RedisTimeout after `ms` (the command stays queued and runs when Redis is back: every use is idempotent). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisTimeout(what, ms)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class DispatchQueue {
  readonly queue: Queue<DispatchPayload>;
  /**
   * @param timeoutMs how long any operation may wait for Redis before it fails with RedisTimeout: Postgres is the
   * truth, so a caller goes on without the dispatch entry (the scheduler's reconciler repairs it) instead of hanging.
   */
  constructor(
    connection: Redis,
    prefix: string,
    private readonly timeoutMs = 2000,
  ) {
    this.queue = new Queue<DispatchPayload>(DISPATCH_QUEUE, { connection, prefix });
    this.queue.on('error', () => undefined); // connection errors surface as RedisTimeout on the operations
  }

  private pending: { jobId: string; done: (e?: unknown) => void }[] = [];
  private flushing = 0;
  private scheduled = false;

  /**
   * Idempotent: the BullMQ job id is the gpulab job id. Entries arriving together (a burst of submissions) go to
   * Redis in one `addBulk` — one round trip and one pipeline for many callers; each caller still waits for its own.
   */
  async enqueue(jobId: string): Promise<void> {
    const added = new Promise<void>((resolve, reject) => {
      this.pending.push({ jobId, done: (e) => (e === undefined ? resolve() : reject(e)) });
      this.schedule();
    });
    added.catch(() => undefined);
    await within(added, this.timeoutMs, 'enqueue');
  }

  private schedule(): void {
    if (this.scheduled || this.flushing >= 4 || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.flushing < 4 && this.pending.length > 0) void this.flush(this.pending.splice(0, 200));
    });
  }

  private async flush(batch: DispatchQueue['pending']): Promise<void> {
    this.flushing++;
    try {
      await this.queue.addBulk(
        batch.map((b) => ({
          name: 'dispatch',
          data: { jobId: b.jobId },
          opts: { jobId: b.jobId, removeOnComplete: true, removeOnFail: { count: 1000 } },
        })),
      );
      for (const b of batch) b.done();
    } catch (e) {
      for (const b of batch) b.done(e ?? new Error('enqueue failed'));
    } finally {
      this.flushing--;
      this.schedule();
    }
  }

  async has(jobId: string): Promise<boolean> {
    return (await within(this.queue.getJob(jobId), this.timeoutMs, 'getJob')) != null;
  }

  async remove(jobId: string): Promise<void> {
    await within(this.queue.remove(jobId), this.timeoutMs, 'remove').catch(() => undefined);
  }

  async depth(): Promise<number> {
    const c = await within(
      this.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized'),
      this.timeoutMs,
      'getJobCounts',
    );
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
