/**
 * Reads each step's loss one step late, so that on a GPU backend the device executes step i while JavaScript records
 * step i + 1 (a loss read waits for the device to finish everything submitted before it; read right after recording,
 * the CPU then idles while the GPU works, and the GPU idles while the CPU records the next step). The read itself is
 * started as soon as the step is recorded, so it does not also wait for step i + 1. On the CPU backends
 * every op has run by the time trainStep returns, and the read costs nothing either way.
 *
 * The loss sums and the divergence check are exactly those of reading every step at once, one step later: a
 * non-finite loss still ends training (DivergedError naming its epoch and step), after one more update has been
 * recorded, which the failed job never keeps. `settle()` before anything that must see every step's loss (end of the
 * epoch, a stop, a checkpoint).
 */
import { disposeStep, type StepResult } from './step';

/** The loss became NaN or infinite: the hyperparameters diverge (a user error, retrying cannot help). */
export class DivergedError extends Error {
  override readonly name = 'DivergedError';
}

interface Pending {
  result: StepResult;
  /** The read, started when the step was pushed (see push). */
  loss: Promise<ArrayLike<number>>;
  n: number;
  epoch: number;
  step: number;
  lr: number;
}

export class LaggedLoss {
  private pending: Pending | null = null;
  /** Sum over read steps of the step's mean loss times its batch size. */
  lossSum: number;
  /** Images of the read steps. */
  samples: number;

  constructor(start: { lossSum: number; samples: number } = { lossSum: 0, samples: 0 }) {
    this.lossSum = start.lossSum;
    this.samples = start.samples;
  }

  /**
   * Takes the step just recorded (its scalars are disposed here) and reads the one before it. The new step's read is
   * started now, though awaited only at the next push: on webgpu that encodes the loss's copy right behind this
   * step's commands, so awaiting it later waits for this step alone, not for the next one recorded after it.
   */
  async push(result: StepResult, at: { n: number; epoch: number; step: number; lr: number }): Promise<void> {
    const before = this.pending;
    const loss = result.loss.data();
    loss.catch(() => undefined); // awaited later (read); not an unhandled rejection meanwhile
    this.pending = { result, loss, ...at };
    if (before) await this.read(before);
  }

  /** Reads the step still pending, if any. */
  async settle(): Promise<void> {
    const p = this.pending;
    this.pending = null;
    if (p) await this.read(p);
  }

  /** Disposes the pending step's scalars unread (training is being abandoned). */
  discard(): void {
    if (this.pending) disposeStep(this.pending.result);
    this.pending = null;
  }

  private async read(p: Pending): Promise<void> {
    let loss: number;
    try {
      loss = (await p.loss)[0]!;
    } finally {
      disposeStep(p.result);
    }
    if (!Number.isFinite(loss))
      throw new DivergedError(`training diverged: loss is ${loss} at epoch ${p.epoch}, step ${p.step} (lr ${p.lr})`);
    this.lossSum += loss * p.n;
    this.samples += p.n;
  }
}
