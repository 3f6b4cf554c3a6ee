/**
 * Reads each step's loss one step late, so that on a GPU backend the device executes step i while JavaScript records
 * step i + 1 (read-behind.ts). On the CPU backends every op has run by the time trainStep returns, and the read costs
 * nothing either way.
 *
 * The loss sums and the divergence check are exactly those of reading every step at once, one step later: a
 * non-finite loss still ends training (DivergedError naming its epoch and step), after one more update has been
 * recorded, which the failed job never keeps. `settle()` before anything that must see every step's loss (end of the
 * epoch, a stop, a checkpoint).
 */
import { ReadBehind } from './read-behind';
import { disposeStep, type StepResult } from './step';

/** The loss became NaN or infinite: the hyperparameters diverge (a user error, retrying cannot help). */
export class DivergedError extends Error {
  override readonly name = 'DivergedError';
}

export class LaggedLoss {
  private readonly reads = new ReadBehind<ArrayLike<number>>();
  /** Sum over read steps of the step's mean loss times its batch size. */
  lossSum: number;
  /** Images of the read steps. */
  samples: number;

  constructor(start: { lossSum: number; samples: number } = { lossSum: 0, samples: 0 }) {
    this.lossSum = start.lossSum;
    this.samples = start.samples;
  }

  /**
   * Takes the step just recorded (its scalars are disposed here), starts reading its loss, and finishes reading the
   * one before it (read-behind.ts).
   */
  push(result: StepResult, at: { n: number; epoch: number; step: number; lr: number }): Promise<void> {
    return this.reads.push(
      result.loss.data(),
      (values) => this.add(values[0]!, at),
      () => disposeStep(result),
    );
  }

  /** Reads the step still pending, if any. */
  settle(): Promise<void> {
    return this.reads.settle();
  }

  /** Disposes the pending step's scalars unread (training is being abandoned). */
  discard(): void {
    this.reads.discard();
  }

  private add(loss: number, at: { n: number; epoch: number; step: number; lr: number }): void {
    if (!Number.isFinite(loss))
      throw new DivergedError(`training diverged: loss is ${loss} at epoch ${at.epoch}, step ${at.step} (lr ${at.lr})`);
    this.lossSum += loss * at.n;
    this.samples += at.n;
  }
}
