import { BACKENDS, type Backend, JobSpecSchema, OptimizerSchema } from '@gpulab/core/src/job-spec';
import type { SubmitRequest } from '@gpulab/sdk';

/**
 * The submit form's state, flat (one value per input), with the seed recipe's defaults taken from the job spec
 * schema itself (packages/core/src/job-spec.ts), so the form cannot drift from what the API would fill in.
 */

export type OptimizerType = 'sgd' | 'adamw';
export type ScheduleType = 'step' | 'cosine' | 'constant';
export type FreezeMode = 'head' | 'partial' | 'full';

export interface SpecForm {
  name: string;
  group: string;
  imageSize: number;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerType;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: ScheduleType;
  stepSize: number;
  gamma: number;
  warmupEpochs: number;
  freeze: FreezeMode;
  trainableStages: number;
  randomResizedCrop: boolean;
  horizontalFlip: boolean;
  labelSmoothing: number;
  earlyStopping: boolean;
  patience: number;
  seed: number;
  backend: Backend;
  flavor: string;
  gpus: number;
  /** Empty: the group's default max runtime. */
  maxHours: string;
}

export const BACKEND_CHOICES = BACKENDS;

const seed = JobSpecSchema.parse({ dataset: { uri: 's3://defaults/none' } });
const sgd = OptimizerSchema.parse({ type: 'sgd' }) as { lr: number; momentum: number; weightDecay: number };
const adamw = OptimizerSchema.parse({ type: 'adamw' }) as { lr: number; weightDecay: number };

export function defaultForm(group: string): SpecForm {
  return {
    name: '',
    group,
    imageSize: seed.imageSize,
    epochs: seed.epochs,
    batchSize: seed.batchSize,
    optimizer: 'sgd',
    lr: sgd.lr,
    momentum: sgd.momentum,
    weightDecay: sgd.weightDecay,
    schedule: 'step',
    stepSize: seed.schedule.type === 'step' ? seed.schedule.stepSize : 7,
    gamma: seed.schedule.type === 'step' ? seed.schedule.gamma : 0.1,
    warmupEpochs: 0,
    freeze: seed.freeze.mode,
    trainableStages: 1,
    randomResizedCrop: seed.augmentation.randomResizedCrop,
    horizontalFlip: seed.augmentation.horizontalFlip,
    labelSmoothing: seed.labelSmoothing,
    earlyStopping: false,
    patience: 5,
    seed: seed.seed,
    backend: seed.backend,
    flavor: seed.resources.flavor,
    gpus: seed.resources.gpus,
    maxHours: '',
  };
}

/** Switching optimizer resets its learning rate and weight decay to that optimizer's defaults. */
export function withOptimizer(f: SpecForm, type: OptimizerType): SpecForm {
  const d = type === 'sgd' ? sgd : adamw;
  return { ...f, optimizer: type, lr: d.lr, weightDecay: d.weightDecay };
}

/** The body of POST /v1/quote and POST /v1/jobs. */
export function toSubmitRequest(f: SpecForm, datasetUri: string): SubmitRequest {
  const maxHours = f.maxHours.trim() === '' ? undefined : Number(f.maxHours);
  return {
    ...(f.name.trim() ? { name: f.name.trim() } : {}),
    ...(f.group ? { group: f.group } : {}),
    dataset: { uri: datasetUri },
    imageSize: f.imageSize,
    epochs: f.epochs,
    batchSize: f.batchSize,
    optimizer:
      f.optimizer === 'sgd'
        ? { type: 'sgd', lr: f.lr, momentum: f.momentum, weightDecay: f.weightDecay }
        : { type: 'adamw', lr: f.lr, weightDecay: f.weightDecay },
    schedule:
      f.schedule === 'step'
        ? { type: 'step', stepSize: f.stepSize, gamma: f.gamma }
        : f.schedule === 'cosine'
          ? { type: 'cosine', warmupEpochs: f.warmupEpochs }
          : { type: 'constant' },
    freeze: f.freeze === 'partial' ? { mode: 'partial', trainableStages: f.trainableStages } : { mode: f.freeze },
    augmentation: { randomResizedCrop: f.randomResizedCrop, horizontalFlip: f.horizontalFlip },
    labelSmoothing: f.labelSmoothing,
    earlyStopping: f.earlyStopping ? { patience: f.patience } : null,
    seed: f.seed,
    backend: f.backend,
    resources: { flavor: f.flavor, gpus: f.gpus, ...(maxHours !== undefined ? { maxHours } : {}) },
  };
}
