/**
 * Reads results one step behind: each push starts reading its values at once and finishes the read pushed before
 * it. On webgpu a read waits for everything submitted before its copy; started right after a step is recorded, the
 * copy sits behind that step's commands alone, so awaiting it after the next step is recorded lets the GPU run one
 * step while the CPU records the next (read right away, each would idle while the other works; started only later,
 * the copy would queue behind the next step too). On the CPU backends the values are there when the step returns.
 * Used by the training loop's LaggedLoss, evaluation (step.ts) and the benches.
 */
interface Pending<T> {
  values: Promise<T>;
  use: (values: T) => void;
  release: () => void;
}

export class ReadBehind<T> {
  private pending: Pending<T> | null = null;

  /**
   * Takes a read just started (`values`, e.g. a tensor's data()), what to do with its values (`use`, which may
   * throw) and what frees its tensors (`release`, called whether the read succeeds or not), and finishes the read
   * pushed before it.
   */
  async push(values: Promise<T>, use: (values: T) => void, release: () => void): Promise<void> {
    values.catch(() => undefined); // awaited at the next push or settle; not an unhandled rejection meanwhile
    const before = this.pending;
    this.pending = { values, use, release };
    if (before) await this.finish(before);
  }

  /** Finishes the read still pending, if any. */
  async settle(): Promise<void> {
    const p = this.pending;
    this.pending = null;
    if (p) await this.finish(p);
  }

  /** Releases the pending read's tensors unread (the work is being abandoned). */
  discard(): void {
    this.pending?.release();
    this.pending = null;
  }

  private async finish(p: Pending<T>): Promise<void> {
    let values: T;
    try {
      values = await p.values;
    } finally {
      p.release();
    }
    p.use(values);
  }
}
