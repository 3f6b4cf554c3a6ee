export interface BatcherOptions {
  /** Most items in one call of `exec`. */
  maxBatch: number;
  /** Most calls of `exec` running at once; past that, new items wait and go together in the next call. */
  maxInFlight: number;
}

/**
 * Group commit: callers hand over one item each and get its own result, while `exec` runs on several at once — one
 * statement and one commit for many callers when they arrive together, no waiting when they don't. An item is sent
 * on the next turn of the event loop while fewer than `maxInFlight` calls are running, else as soon as one ends, with
 * whatever else has arrived. When a call with several items fails, each item is tried again on its own, so one bad
 * item fails only its own caller.
 */
export class Batcher<I, O> {
  private pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly exec: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions,
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.opts.maxInFlight || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.inFlight < this.opts.maxInFlight && this.pending.length > 0)
        void this.send(this.pending.splice(0, this.opts.maxBatch));
    });
  }

  private async send(batch: Batcher<I, O>['pending']): Promise<void> {
    this.inFlight++;
    try {
      const out = await this.exec(batch.map((b) => b.item));
      for (const [i, b] of batch.entries()) b.resolve(out[i]!);
    } catch (e) {
      if (batch.length === 1) batch[0]!.reject(e);
      else
        await Promise.all(
          batch.map((b) =>
            this.exec([b.item]).then(
              (o) => b.resolve(o[0]!),
              (err: unknown) => b.reject(err),
            ),
          ),
        );
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }
}
