/** Epoch metrics: pure bookkeeping over confusion matrices and the history of epochs. */
import type { JobSpec } from '@gpulab/core';

export interface EpochMetrics {
  /** 1-based epoch number. */
  epoch: number;
  /** The attempt that trained this epoch. */
  attempt: number;
  /** Mean training loss over the epoch's samples (with label smoothing when configured). */
  trainLoss: number;
  /** Mean cross-entropy over the validation set (no label smoothing). */
  valLoss: number;
  /** Top-1 accuracy over the validation set, in [0, 1]. */
  valAcc: number;
  /** Per-class recall (correct / samples of that class); null for a class with no validation samples. */
  perClassAcc: (number | null)[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  lr: number;
  /** Wall-clock seconds of the epoch (train + validation), summed over attempts for a resumed epoch. */
  seconds: number;
  /** Checkpoint prefix written at the end of the epoch. */
  checkpoint: string;
}

export class Confusion {
  readonly counts: number[][];
  constructor(readonly numClasses: number) {
    this.counts = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  }

  add(truth: ArrayLike<number>, predicted: ArrayLike<number>, n = truth.length): void {
    for (let i = 0; i < n; i++) {
      const row = this.counts[truth[i]!];
      if (!row) throw new RangeError(`label ${truth[i]} out of range`);
      row[predicted[i]!] = (row[predicted[i]!] ?? 0) + 1;
    }
  }

  total(): number {
    return this.counts.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  }

  accuracy(): number {
    const total = this.total();
    if (total === 0) return 0;
    return this.counts.reduce((s, row, i) => s + (row[i] ?? 0), 0) / total;
  }

  perClass(): (number | null)[] {
    return this.counts.map((row, i) => {
      const n = row.reduce((a, b) => a + b, 0);
      return n === 0 ? null : (row[i] ?? 0) / n;
    });
  }
}

/** The epoch with the highest validation accuracy (earliest on ties, like the torchvision tutorial's `>`). */
export function bestEpoch(history: readonly EpochMetrics[]): EpochMetrics | null {
  let best: EpochMetrics | null = null;
  for (const m of history) if (!best || m.valAcc > best.valAcc) best = m;
  return best;
}

/**
 * Early stopping on validation loss: stop when the last `patience` epochs brought no improvement of more than
 * `minDelta` over the best loss seen before them. A pure function of the history, so resuming needs no extra state.
 */
export function shouldStopEarly(history: readonly EpochMetrics[], rule: JobSpec['earlyStopping']): boolean {
  if (!rule || history.length <= rule.patience) return false;
  const cut = history.length - rule.patience;
  let bestBefore = Number.POSITIVE_INFINITY;
  for (const m of history.slice(0, cut)) bestBefore = Math.min(bestBefore, m.valLoss);
  return history.slice(cut).every((m) => !(m.valLoss < bestBefore - rule.minDelta));
}

/** The line printed to stdout after every epoch. */
export function epochLine(m: Pick<EpochMetrics, 'epoch' | 'trainLoss' | 'valLoss' | 'valAcc'>, epochs: number): string {
  return `Epoch ${m.epoch}/${epochs} | Train Loss: ${m.trainLoss.toFixed(4)} | Val Loss: ${m.valLoss.toFixed(4)} | Val Acc: ${(m.valAcc * 100).toFixed(2)}%`;
}
