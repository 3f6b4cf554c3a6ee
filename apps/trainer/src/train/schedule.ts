/**
 * Learning-rate schedules, evaluated per epoch (0-based epoch index), as torch's schedulers stepped once per epoch:
 * - step: lr · γ^floor(e / stepSize)                                           (torch.optim.lr_scheduler.StepLR)
 * - cosine: linear warm-up lr·(e+1)/(W+1) for e < W, then
 *           minLr + (lr − minLr)·(1 + cos(π·(e−W)/(E−W)))/2                   (CosineAnnealingLR, T_max = E − W)
 * - constant: lr
 * A pure function of the epoch, so a resumed run needs no scheduler state.
 */
import type { JobSpec } from '@gpulab/core';

export function learningRate(
  schedule: JobSpec['schedule'],
  baseLr: number,
  epochIndex: number,
  totalEpochs: number,
): number {
  switch (schedule.type) {
    case 'constant':
      return baseLr;
    case 'step':
      return baseLr * schedule.gamma ** Math.floor(epochIndex / schedule.stepSize);
    case 'cosine': {
      const w = Math.min(schedule.warmupEpochs, Math.max(0, totalEpochs - 1));
      if (epochIndex < w) return (baseLr * (epochIndex + 1)) / (w + 1);
      const span = totalEpochs - w;
      const t = span <= 0 ? 0 : (epochIndex - w) / span;
      return schedule.minLr + ((baseLr - schedule.minLr) * (1 + Math.cos(Math.PI * t))) / 2;
    }
  }
}
