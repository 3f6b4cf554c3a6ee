/**
 * The epoch loop: train, evaluate, report, checkpoint; early stopping; stop requests (SIGTERM) honoured between
 * steps. Everything stochastic comes from `batches(split, epoch)`, which must depend only on (seed, epoch), so a run
 * resumed from any checkpoint ends with the same metrics as one that never stopped. Head-only and partial plans train
 * on cached activations of their frozen front (feature-cache.ts), which relies on the same contract plus: val batches are the same in every
 * epoch, and a sample's `views` id names its exact pixels.
 */
import type { JobSpec } from '@gpulab/core';
import type { EventSink } from '../events';
import type { ObjectStore } from '../io/object-store';
import type { Logger } from '../log';
import type { ResNet18 } from '../model/resnet18';
import { type CheckpointState, checkpointPrefixFor, type PartialEpoch, writeCheckpoint } from './checkpoint';
import { cacheStage, FEATURE_CACHE_DEFAULTS, FeatureCache } from './feature-cache';
import type { FreezePlan } from './freeze';
import { LaggedLoss } from './lagged-loss';
import { bestEpoch, type EpochMetrics, epochLine, shouldStopEarly } from './metrics';
import type { Optimizer } from './optimizers';
import { learningRate } from './schedule';
import {
  type Batch,
  evaluate,
  evaluateFeatures,
  type FeatureBatch,
  headStep,
  type StepResult,
  tooSmallForTraining,
  trainStep,
} from './step';

export interface TrainingDeps {
  jobId: string;
  attempt: number;
  spec: JobSpec;
  specDigest: string;
  classes: string[];
  model: ResNet18;
  optimizer: Optimizer;
  plan: FreezePlan;
  batches(split: 'train' | 'val', epoch: number): AsyncIterable<Batch>;
  store: ObjectStore;
  emit: EventSink;
  /** Receives the per-epoch progress line (stdout in the trainer). */
  print(line: string): void;
  log: Logger;
  /** Polled between steps; true once a stop was requested (SIGTERM). */
  stopRequested(): boolean;
  /** State of the checkpoint being resumed, if any. */
  resume: CheckpointState | null;
  /** Milliseconds, for epoch durations (injectable for tests). */
  clock?: () => number;
  /**
   * Head-only and partial plans train on cached activations of their frozen front (feature-cache.ts: the backbone's
   * features, or what enters the first trainable stage), with at most `maxBytes` held (default
   * FEATURE_CACHE_DEFAULTS). `false` recomputes them in every step (the reference path, for tests and benchmarks).
   * Ignored for full fine-tuning.
   */
  featureCache?: { maxBytes: number } | false;
}

export interface TrainingOutcome {
  status: 'completed' | 'stopped';
  history: EpochMetrics[];
  best: EpochMetrics | null;
  stoppedEarly: boolean;
}

export { DivergedError } from './lagged-loss';

export async function runTraining(deps: TrainingDeps): Promise<TrainingOutcome> {
  const { spec, model, optimizer, plan, log } = deps;
  const clock = deps.clock ?? (() => performance.now());
  const epochs = spec.epochs;
  const history: EpochMetrics[] = [...(deps.resume?.history ?? [])];
  let partial: PartialEpoch | null = deps.resume?.partial ?? null;
  const firstEpoch = (deps.resume?.epoch ?? 0) + 1;

  const state = (epoch: number, p: PartialEpoch | null): CheckpointState => ({
    version: 1,
    jobId: deps.jobId,
    attempt: deps.attempt,
    epoch,
    partial: p,
    history,
    classes: deps.classes,
    rng: { seed: spec.seed, scheme: 'counter(seed, epoch, index)', nextEpoch: p ? p.epoch : epoch + 1 },
    optimizer: { type: optimizer.type, step: optimizer.steps },
    specDigest: deps.specDigest,
  });

  const checkpoint = async (epoch: number, p: PartialEpoch | null) => {
    const written = await writeCheckpoint(deps.store, { model, optimizer, state: state(epoch, p) });
    await deps.emit({ type: 'checkpoint', attempt: deps.attempt, epoch: p ? p.epoch : epoch, key: written.prefix });
    await deps.emit({ type: 'artifact', kind: 'checkpoint', key: written.prefix, bytes: written.bytes });
    log.info('checkpoint written', { prefix: written.prefix, bytes: written.bytes, partial: p !== null });
  };

  const outcome = (status: TrainingOutcome['status'], stoppedEarly: boolean): TrainingOutcome => ({
    status,
    history,
    best: bestEpoch(history),
    stoppedEarly,
  });

  if (shouldStopEarly(history, spec.earlyStopping)) return outcome('completed', true);

  const cacheOpts = deps.featureCache;
  const cut = cacheOpts !== false ? cacheStage(plan) : null;
  const cache =
    cut && cacheOpts !== false
      ? new FeatureCache(model, spec.imageSize, cacheOpts?.maxBytes ?? FEATURE_CACHE_DEFAULTS.maxBytes, cut)
      : null;

  for (let epoch = firstEpoch; epoch <= epochs; epoch++) {
    const lr = learningRate(spec.schedule, spec.optimizer.lr, epoch - 1, epochs);
    const started = clock();
    const carried = partial?.epoch === epoch ? partial : null;
    partial = null;
    let step = 0;
    // each step's loss is read while the next one is recorded (lagged-loss.ts)
    const losses = new LaggedLoss({ lossSum: carried?.lossSum ?? 0, samples: carried?.samples ?? 0 });
    const skip = carried?.step ?? 0;
    let trained = 0;
    let stopped = false;

    try {
      const train = cache
        ? cache.withTrainFeatures(deps.batches('train', epoch), skip)
        : withoutFeatures(deps.batches('train', epoch));
      for await (const { batch, features } of train) {
        if (step < skip) {
          step++; // replayed batch of a resumed epoch: its update is already in the weights
          continue;
        }
        if (deps.stopRequested()) {
          stopped = true;
          break;
        }
        if (tooSmallForTraining(batch.n, spec.imageSize, plan)) {
          log.warn('skipping a train batch too small for batch norm', { epoch, step, n: batch.n });
          step++;
          continue;
        }
        const opts = {
          imageSize: spec.imageSize,
          lr,
          labelSmoothing: spec.labelSmoothing,
          gradClipNorm: spec.gradClipNorm,
        };
        const result: StepResult = features
          ? headStep(model, optimizer, plan, features, opts)
          : trainStep(model, optimizer, plan, batch, opts);
        await losses.push(result, { n: batch.n, epoch, step, lr });
        step++;
        trained++;
      }
      await losses.settle();
    } finally {
      losses.discard();
    }
    const { lossSum, samples } = losses;

    const seconds = (carried?.seconds ?? 0) + (clock() - started) / 1000;
    if (stopped) {
      // With no new step in this epoch, latest.json already points at an equivalent checkpoint.
      if (trained > 0) await checkpoint(epoch - 1, { epoch, step, lossSum, samples, seconds });
      return outcome('stopped', false);
    }

    const trainSeconds = (clock() - started) / 1000;
    const evalStarted = clock();
    const val = cache
      ? await evaluateFeatures(
          model,
          cache.valFeatures(() => deps.batches('val', epoch)),
        )
      : await evaluate(model, deps.batches('val', epoch), spec.imageSize);
    const metrics: EpochMetrics = {
      epoch,
      attempt: deps.attempt,
      trainLoss: samples === 0 ? 0 : lossSum / samples,
      valLoss: val.loss,
      valAcc: val.accuracy,
      perClassAcc: val.perClass,
      confusion: val.confusion,
      lr,
      seconds: seconds + (clock() - evalStarted) / 1000,
      checkpoint: checkpointPrefixFor(deps.jobId, deps.attempt, epoch),
    };
    history.push(metrics);
    deps.print(epochLine(metrics, epochs));
    await deps.emit({
      type: 'epoch',
      attempt: deps.attempt,
      epoch,
      epochs,
      trainLoss: metrics.trainLoss,
      valLoss: metrics.valLoss,
      valAcc: metrics.valAcc,
      lr,
      perClassAcc: metrics.perClassAcc,
      confusion: metrics.confusion,
      seconds: metrics.seconds,
    });
    const checkpointStarted = clock();
    await checkpoint(epoch, null);
    log.info('epoch done', {
      epoch,
      trainSeconds,
      evalSeconds: (checkpointStarted - evalStarted) / 1000,
      checkpointSeconds: (clock() - checkpointStarted) / 1000,
      trainImagesPerSecond: trainSeconds > 0 ? (samples - (carried?.samples ?? 0)) / trainSeconds : null,
      ...(cache ? { featureCache: cache.stats() } : {}),
    });
    if (shouldStopEarly(history, spec.earlyStopping)) {
      log.info('early stopping', { epoch, patience: spec.earlyStopping?.patience });
      return outcome('completed', true);
    }
    if (epoch < epochs && deps.stopRequested()) return outcome('stopped', false);
  }
  return outcome('completed', false);
}

/** The batches of `source` with no cached rows (full fine-tuning, or the feature cache off). */
async function* withoutFeatures(
  source: AsyncIterable<Batch>,
): AsyncGenerator<{ batch: Batch; features: FeatureBatch | null }, void, undefined> {
  for await (const batch of source) yield { batch, features: null };
}
