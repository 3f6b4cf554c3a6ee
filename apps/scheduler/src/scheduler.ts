import { sweepReservations } from '@gpulab/db';
import type { DispatchDecision } from '@gpulab/queue';
import { admissionPass } from './admission';
import type { SchedulerDeps } from './deps';
import { type AttemptEnd, meter, recordAttemptEnd } from './finish';
import { launchReady, startAttempt } from './launch';
import { attemptName } from './launchers/launcher';

/**
 * The scheduler's control loop. Every step reads the current state from Postgres and moves it forward (reconcile
 * from state, not from events); steps never overlap (one mutex), and exits reported by the launcher are applied at
 * the start of the next step so that no other step sees a half-known attempt.
 */
export class Scheduler {
  private chain: Promise<unknown> = Promise.resolve();
  /** Reported ends not yet recorded, in order; `recorded` tells the launcher its record may go. */
  private readonly exits: Array<{ end: AttemptEnd; recorded: () => void }> = [];
  private timer: NodeJS.Timeout | null = null;
  private lastRequeue = 0;

  constructor(private readonly deps: SchedulerDeps) {
    deps.launcher.onExit(
      (e) =>
        new Promise<void>((recorded) => {
          const end = {
            jobId: e.jobId,
            attempt: e.attempt,
            code: e.code,
            signal: e.signal,
            endedAt: e.endedAt,
            tail: e.tail,
          };
          this.exits.push({ end, recorded });
          // a step that fails (Postgres down) leaves the exit queued for the next one; never an unhandled rejection
          this.tick().catch((err: unknown) =>
            deps.log.warn({ err }, 'scheduler step after an exit failed; will retry'),
          );
        }),
    );
    deps.launcher.onOutput?.((o) => {
      deps.logs
        ?.append(o.jobId, o.attempt, o.text)
        .catch((e) => deps.log.warn({ err: e, jobId: o.jobId }, 'could not append to the live log'));
    });
  }

  /** Runs `fn` after every step already queued. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Startup reconciliation: attempts the database thinks are live but the launcher does not run are lost; live
   * ones still marked LAUNCHING are adopted.
   */
  async recover(): Promise<void> {
    await this.serial(async () => {
      const running = new Set(await this.deps.launcher.running());
      const live = await this.deps.db.job.findMany({ where: { status: { in: ['LAUNCHING', 'RUNNING'] } } });
      for (const job of live) {
        const name = attemptName(job.id, job.attempt);
        if (running.has(name)) {
          // a LAUNCHING job whose process or pod runs: the scheduler died between launching and marking it
          // RUNNING — adopt it (the launcher does not start a second one) and go on from there
          if (job.status === 'LAUNCHING') await startAttempt(this.deps, job, job.attempt, name);
          continue;
        }
        this.deps.log.warn({ jobId: job.id, attempt: job.attempt }, 'attempt lost (scheduler restart); retrying');
        await recordAttemptEnd(this.deps, {
          jobId: job.id,
          attempt: job.attempt,
          code: null,
          signal: 'LOST',
          endedAt: this.deps.clock(),
          tail: 'the attempt was lost when the scheduler restarted',
        });
        await this.deps.launcher.discard?.(name);
      }
      await this.requeueMissing();
    });
  }

  tick(): Promise<void> {
    return this.serial(async () => {
      await this.applyExits();
      await this.enforceStops();
      await this.sweepReservations();
      await admissionPass(this.deps);
      await launchReady(this.deps);
      await this.applyExits();
      await this.meterRunning();
      if (this.deps.clock().getTime() - this.lastRequeue > 30_000) await this.requeueMissing();
    });
  }

  /** The dispatch queue's handler: one step, then done if the job left QUEUED, else look again later. */
  async onDispatch(jobId: string): Promise<DispatchDecision> {
    await this.tick();
    const job = await this.deps.db.job.findUnique({ where: { id: jobId }, select: { status: true } });
    if (job?.status !== 'QUEUED') return 'done';
    return { retryAt: this.deps.clock().getTime() + Math.max(5_000, this.deps.intervalMs * 5) };
  }

  start(): void {
    const loop = () => {
      this.tick()
        .catch((e) => this.deps.log.error({ err: e }, 'scheduler step failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(loop, this.deps.intervalMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.chain;
  }

  /**
   * Records reported exits in order. An exit leaves the list only once it is recorded (and only then is the
   * launcher told, so it may delete what recorded the end on its side): one that fails (Postgres down) stays at the
   * head and the step fails, so the next step retries it — a launcher reports each end once, and an exit dropped
   * here would leave its job RUNNING with nothing running. recordAttemptEnd is idempotent.
   */
  private async applyExits(): Promise<void> {
    while (this.exits.length) {
      const next = this.exits[0]!;
      await recordAttemptEnd(this.deps, next.end);
      this.exits.shift();
      next.recorded();
    }
  }

  /**
   * Stop requests reach running attempts. Two guards ask a running job to checkpoint and stop before it would
   * overrun, projecting its usage over the next tick plus the stop grace period (the time a checkpoint may take):
   * its max runtime (TIMED_OUT) and its hold — what its owner has reserved for it, which an instructor's forced
   * revoke can shrink below the runtime (BUDGET_EXHAUSTED). Usage past the hold is never charged.
   */
  private async enforceStops(): Promise<void> {
    const now = this.deps.clock();
    const running = await this.deps.db.job.findMany({ where: { status: { in: ['LAUNCHING', 'RUNNING'] } } });
    const aheadSeconds = (this.deps.intervalMs + this.deps.stopGraceMs) / 1000;
    for (const job of running) {
      if (!job.stopRequested && job.status === 'RUNNING') {
        const used = await meter(this.deps, job.id, now);
        const projected = used.gpuSeconds + job.gpus * aheadSeconds;
        const stop =
          projected >= job.maxRuntimeSeconds * job.gpus
            ? 'timed_out'
            : projected >= job.heldSeconds
              ? 'budget_exhausted'
              : null;
        if (stop) {
          await this.deps.db.job.updateMany({
            where: { id: job.id, stopRequested: null },
            data: { stopRequested: stop },
          });
          job.stopRequested = stop;
          this.deps.log.info(
            { jobId: job.id, usedSeconds: used.gpuSeconds, heldSeconds: job.heldSeconds, stop },
            stop === 'timed_out'
              ? 'max runtime reached; stopping after a checkpoint'
              : "the job's hold would run out; stopping after a checkpoint",
          );
        }
      }
      if (job.stopRequested) await this.deps.launcher.stop(attemptName(job.id, job.attempt), this.deps.stopGraceMs);
    }
  }

  /** Ends bookings whose window is over and releases those unused past the grace period. */
  private async sweepReservations(): Promise<void> {
    const closed = await sweepReservations(this.deps.db, this.deps.clock(), this.deps.reservationGraceMs);
    for (const r of closed) this.deps.log.info({ reservationId: r.id, status: r.status }, 'reservation closed');
  }

  private async meterRunning(): Promise<void> {
    const running = await this.deps.db.job.findMany({ where: { status: 'RUNNING' }, select: { id: true } });
    for (const j of running) await meter(this.deps, j.id, this.deps.clock());
  }

  /** QUEUED jobs whose dispatch entry was lost (Redis flushed or down at submit) are enqueued again. */
  private async requeueMissing(): Promise<void> {
    this.lastRequeue = this.deps.clock().getTime();
    const queued = await this.deps.db.job.findMany({ where: { status: 'QUEUED' }, select: { id: true } });
    for (const j of queued) {
      try {
        if (!(await this.deps.queue.has(j.id))) await this.deps.queue.enqueue(j.id);
      } catch (e) {
        this.deps.log.warn({ err: e }, 'redis unavailable; dispatch entries will be repaired later');
        return;
      }
    }
  }
}
