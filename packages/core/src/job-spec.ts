import { z } from 'zod';

/**
 * The job spec: everything the trainer needs to run a fine-tune, and everything the scheduler needs to admit it.
 * Defaults are the seed recipe (torchvision transfer-learning tutorial): SGD lr 0.001 momentum 0.9, StepLR(7, 0.1).
 */
export const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type Backend = (typeof BACKENDS)[number];

/** An `s3://bucket/prefix` URI (what dataset and pretrained-weight URIs must look like; no ".." segment either). */
export const S3_URI_PATTERN = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,62}\/[^\0]*$/;
/** A GPU flavor name. */
export const FLAVOR_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;

const s3Uri = z
  .string()
  .regex(S3_URI_PATTERN, 'must be an s3://bucket/prefix URI')
  .refine((u) => !u.split('/').includes('..'), 'must not contain ".." segments');

export const OptimizerSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('sgd'),
    lr: z.number().positive().max(10).default(0.001),
    momentum: z.number().min(0).max(0.999).default(0.9),
    weightDecay: z.number().min(0).max(1).default(0),
    nesterov: z.boolean().default(false),
  }),
  z.object({
    type: z.literal('adamw'),
    lr: z.number().positive().max(10).default(0.001),
    beta1: z.number().min(0).max(0.9999).default(0.9),
    beta2: z.number().min(0).max(0.99999).default(0.999),
    eps: z.number().positive().default(1e-8),
    weightDecay: z.number().min(0).max(1).default(0.01),
  }),
]);

export const ScheduleSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('step'),
    stepSize: z.number().int().positive().default(7),
    gamma: z.number().positive().max(1).default(0.1),
  }),
  z.object({
    type: z.literal('cosine'),
    warmupEpochs: z.number().int().min(0).default(0),
    minLr: z.number().min(0).default(0),
  }),
  z.object({ type: z.literal('constant') }),
]);

/** head: only the new fc layer trains; partial: the last `trainableStages` of layer1..layer4 plus the head; full: everything. */
export const FreezeSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('head') }),
  z.object({ mode: z.literal('partial'), trainableStages: z.number().int().min(1).max(4).default(1) }),
  z.object({ mode: z.literal('full') }),
]);

export const AugmentationSchema = z.object({
  randomResizedCrop: z.boolean().default(true),
  horizontalFlip: z.boolean().default(true),
  /** RandomResizedCrop scale range, as torchvision's default. */
  scale: z.tuple([z.number().gt(0).max(1), z.number().gt(0).max(1)]).default([0.08, 1]),
});

export const ResourcesSchema = z.object({
  gpus: z.number().int().min(1).max(8).default(1),
  /** GPU flavor (type); `local` is the local executor's slot. */
  flavor: z.string().regex(FLAVOR_PATTERN, 'must be a lowercase flavor name').default('local'),
  /**
   * Upper bound on wall time (max runtime); `maxHours × gpus` is held against the quota at admission. Unset: the
   * group's default max runtime.
   */
  maxHours: z.number().positive().max(168).optional(),
});

export const JobSpecSchema = z
  .object({
    name: z.string().trim().min(1).max(120).optional(),
    dataset: z.object({ uri: s3Uri }).strict(),
    model: z
      .object({
        arch: z.literal('resnet18').default('resnet18'),
        /** s3:// URI of a safetensors file with torchvision names; null trains from random initialisation. */
        pretrained: s3Uri.nullable().default(null),
      })
      .strict()
      .default({}),
    imageSize: z.number().int().min(16).max(512).default(224),
    epochs: z.number().int().min(1).max(500).default(25),
    batchSize: z.number().int().min(1).max(512).default(32),
    optimizer: OptimizerSchema.default({ type: 'sgd' }),
    schedule: ScheduleSchema.default({ type: 'step' }),
    freeze: FreezeSchema.default({ mode: 'head' }),
    augmentation: AugmentationSchema.default({}),
    gradClipNorm: z.number().positive().nullable().default(null),
    labelSmoothing: z.number().min(0).max(0.5).default(0),
    earlyStopping: z
      .object({ patience: z.number().int().min(1).max(100), minDelta: z.number().min(0).default(0) })
      .nullable()
      .default(null),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(42),
    backend: z.enum(BACKENDS).default('auto'),
    resources: ResourcesSchema.default({}),
  })
  .strict();

export type JobSpecInput = z.input<typeof JobSpecSchema>;
export type JobSpec = z.output<typeof JobSpecSchema>;

/** The job's max runtime in whole seconds: the spec's `resources.maxHours`, else the group's default. */
export function maxRuntimeSecondsOf(spec: JobSpec, groupDefaultMaxHours: number): number {
  return Math.max(1, Math.round((spec.resources.maxHours ?? groupDefaultMaxHours) * 3600));
}
