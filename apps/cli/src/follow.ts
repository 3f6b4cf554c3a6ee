/**
 * Following a job until it ends: status changes, why it waits (reason, queue position, estimated start), one line per
 * epoch in the seed recipe's format, the cost so far after each, and at the end the outcome and where the model is.
 * Ctrl-C stops following (the job keeps running) and says how to reattach.
 */
import { type GpulabClient, type Job, TERMINAL_STATUSES } from '@gpulab/sdk';
import type { Ctx } from './context';
import { EXIT } from './exit-codes';
import { bytes, costLine, epochLine, modelSummary, pendingLine } from './format';

export interface FollowResult {
  job: Job;
  /** Ctrl-C: stopped following before the job ended. */
  detached: boolean;
}

/** Prints what changed between two polls of a job; keeps what it has printed. */
export class JobPrinter {
  private status = '';
  private pending: { reason: string; position: number | null; at: number | null } | null = null;
  private attempt = 0;
  private readonly epochs = new Set<string>();

  /** `seen`: a status already shown (submit has printed "submitted job … (QUEUED)"). */
  constructor(
    private readonly print: (line: string) => void,
    seen = '',
  ) {
    this.status = seen;
  }

  update(job: Job, now = new Date()): void {
    if (job.status !== this.status) {
      this.status = job.status;
      const why = job.statusMessage && job.status !== 'QUEUED' ? ` — ${job.statusMessage}` : '';
      if (!TERMINAL_STATUSES.includes(job.status)) this.print(`status: ${job.status}${why}`);
    }
    if (job.attempt > 1 && job.attempt !== this.attempt && job.status !== 'RETRYING')
      this.print(`attempt ${job.attempt} of ${job.maxAttempts} (resumes from the last checkpoint)`);
    this.attempt = job.attempt;
    if (job.pending && job.status === 'QUEUED') {
      if (this.pendingChanged(job.pending)) this.print(pendingLine(job.pending, now));
    } else this.pending = null;
    const fresh = job.metrics
      .filter((m) => !this.epochs.has(`${m.attempt}:${m.epoch}`))
      .sort((a, b) => a.attempt - b.attempt || a.epoch - b.epoch);
    for (const m of fresh) {
      this.epochs.add(`${m.attempt}:${m.epoch}`);
      this.print(epochLine(m));
    }
    if (fresh.length && !TERMINAL_STATUSES.includes(job.status)) this.print(`  cost so far: ${costLine(job)}`);
  }

  /**
   * Whether why-it-waits changed enough to print again: another reason or queue position, or an estimated start that
   * moved by more than 5 minutes (the message itself carries live numbers, so it is not compared).
   */
  private pendingChanged(p: NonNullable<Job['pending']>): boolean {
    const at = p.estimatedStartAt ? new Date(p.estimatedStartAt).getTime() : null;
    const last = this.pending;
    const lastAt = last?.at ?? null;
    const moved = lastAt === null || at === null ? lastAt !== at : Math.abs(lastAt - at) > 300_000;
    if (last && last.reason === p.reason && last.position === p.position && !moved) return false;
    this.pending = { reason: p.reason, position: p.position, at };
    return true;
  }

  /** The outcome, the cost, and where the model is. */
  finish(job: Job): void {
    this.update(job);
    const why = job.statusMessage ? ` — ${job.statusMessage}` : '';
    this.print(`job ${job.id} ${job.status}${why}`);
    this.print(`  cost: ${costLine(job)}`);
    const model = modelSummary(job);
    if (model) {
      this.print(`  model: ${model.prefix} (${model.files} files, ${bytes(model.bytes)})`);
      this.print(`  download it: gpulab download ${job.id}    classify images: gpulab predict ${job.id} IMAGE…`);
    } else if (job.status !== 'SUCCEEDED') {
      this.print(`  see the output: gpulab logs ${job.id}`);
    }
  }
}

export function exitFor(job: Job): number {
  return job.status === 'SUCCEEDED' ? EXIT.OK : EXIT.JOB_FAILED;
}

/** Polls the job every ctx.pollMs until it ends or Ctrl-C. Prints on stdout unless --json. */
export async function followJob(
  ctx: Ctx,
  client: GpulabClient,
  id: string,
  o: { first?: Job; seen?: string } = {},
): Promise<FollowResult> {
  const printer = new JobPrinter((line) => {
    if (!ctx.json) ctx.out(line);
  }, o.seen);
  let job = o.first ?? (await client.jobs.get(id));
  for (;;) {
    if (TERMINAL_STATUSES.includes(job.status)) {
      printer.finish(job);
      return { job, detached: false };
    }
    printer.update(job);
    if (!(await pause(ctx.pollMs, ctx.signal))) return { job, detached: true };
    try {
      job = await client.jobs.get(id);
    } catch (e) {
      if (ctx.signal.aborted) return { job, detached: true };
      throw e;
    }
  }
}

/** How to come back to a job after Ctrl-C; it was not cancelled. */
export function detachHint(id: string): string {
  return [
    `Detached: job ${id} keeps running (Ctrl-C does not cancel it).`,
    `  reattach:  gpulab status ${id} --follow    (or: gpulab logs ${id} -f)`,
    `  cancel:    gpulab cancel ${id}`,
  ].join('\n');
}

/** false when aborted. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
