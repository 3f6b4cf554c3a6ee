/** One optimisation step and one evaluation pass over batches. */
import * as tf from '@tensorflow/tfjs-core';
import { FEATURES, type Stage } from '../model/architecture';
import type { ResNet18 } from '../model/resnet18';
import { clipByGlobalNorm } from './clip';
import type { FreezePlan } from './freeze';
import { crossEntropy, perSampleCrossEntropy } from './loss';
import { Confusion } from './metrics';
import type { Optimizer } from './optimizers';
import { ReadBehind } from './read-behind';

export interface Batch {
  /** n × S × S × 3 float32, NHWC. */
  x: Float32Array;
  y: Int32Array;
  n: number;
  /**
   * Optional, per sample: a view id ≥ 0 when the sample's pixels are a deterministic function of (split, id) — the
   * same id in the same split always brings bit-identical pixels, in any epoch — or -1 when the view is new (a random
   * crop). Lets the head-only feature cache reuse backbone features (feature-cache.ts); absent means all -1.
   */
  views?: Int32Array;
}

/**
 * A batch as cached rows (feature-cache.ts): n rows of `shape` float32 (row-major), labels, size. `at` is where the
 * network was cut — 'fc' (backbone features, shape [512]; the default) or the stage the rows enter.
 */
export interface FeatureBatch {
  features: Float32Array;
  y: Int32Array;
  n: number;
  at?: Stage;
  shape?: number[];
}

export interface StepOptions {
  imageSize: number;
  lr: number;
  labelSmoothing: number;
  gradClipNorm: number | null;
}

function inputs(batch: Batch, imageSize: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const want = batch.n * imageSize * imageSize * 3;
  if (batch.x.length !== want) throw new Error(`batch of ${batch.n} has ${batch.x.length} values, expected ${want}`);
  return { x: tf.tensor4d(batch.x, [batch.n, imageSize, imageSize, 3]), y: tf.tensor1d(batch.y, 'int32') };
}

function featureInputs(batch: FeatureBatch): { features: tf.Tensor; y: tf.Tensor1D } {
  const shape = batch.shape ?? [FEATURES];
  const row = shape.reduce((a, b) => a * b, 1);
  if (batch.features.length !== batch.n * row)
    throw new Error(`feature batch of ${batch.n} has ${batch.features.length} values, expected ${batch.n * row}`);
  return { features: tf.tensor(batch.features, [batch.n, ...shape]), y: tf.tensor1d(batch.y, 'int32') };
}

/** Spatial size of layer4's output for an input of `imageSize` (conv1 /2, maxpool /2, layer2..4 /2 each). */
export function finalFeatureSize(imageSize: number): number {
  let s = imageSize;
  s = Math.floor((s + 2 * 3 - 7) / 2) + 1; // conv1
  s = Math.floor((s + 2 * 1 - 3) / 2) + 1; // maxpool
  for (let i = 0; i < 3; i++) s = Math.floor((s + 2 * 1 - 3) / 2) + 1; // layer2..4
  return s;
}

/**
 * True when a batch cannot be used in train mode: batch norm needs more than one value per channel (PyTorch raises
 * "Expected more than 1 value per channel when training" in the same case: a last batch of one image whose final
 * feature map is 1×1).
 */
export function tooSmallForTraining(n: number, imageSize: number, plan: FreezePlan): boolean {
  const f = finalFeatureSize(imageSize);
  return plan.trainStages.size > 0 && n * f * f < 2;
}

export interface StepResult {
  /** Mean loss of the batch. */
  loss: tf.Scalar;
  /** L2 norms of the (unclipped) gradients of the parameters named in `gradNormsOf`. */
  gradNorms: Map<string, tf.Scalar>;
}

/**
 * Forward, backward and optimizer update for one batch. Gradients are taken only for `plan.trainable`. The returned
 * scalars are kept: dispose them after reading (disposeStep).
 */
/**
 * Activation memory a full fine-tuning step keeps per image on the wasm backend, at 224 px (measured: a batch of 32
 * grows the wasm heap to 1.93 GiB, 64 to 3.69 GiB); it scales with the pixel count.
 */
const WASM_BYTES_PER_IMAGE_224 = 62 * 2 ** 20;
/** What one forward/backward may use on wasm, whose heap cannot grow past 4 GiB (an abort, not an error). */
const WASM_STEP_BUDGET = 2.5 * 2 ** 30;

/**
 * The largest number of images one forward/backward pass takes at `imageSize` on the current backend: unbounded
 * except on wasm/cpu, where a larger batch is streamed in micro-batches (trainStep).
 */
export function maxMicroBatch(imageSize: number): number {
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') return Number.POSITIVE_INFINITY;
  const perImage = WASM_BYTES_PER_IMAGE_224 * (imageSize / 224) ** 2;
  return Math.max(1, Math.floor(WASM_STEP_BUDGET / perImage));
}

/**
 * Forward, backward and optimizer update for one batch. Gradients are taken only for `plan.trainable`. The returned
 * scalars are kept: dispose them after reading (disposeStep).
 *
 * A batch larger than `opts.microBatch` (default maxMicroBatch(imageSize)) is streamed in near-equal micro-batches
 * whose gradients are accumulated (each scaled by its share of the batch) before one clip and one update, so the
 * activation memory is that of one micro-batch. Gradients are the full batch's exactly when no batch norm trains
 * (head-only); with training batch norms, each micro-batch normalises with its own statistics and updates the running
 * statistics once (as gradient accumulation does in PyTorch).
 */
export function trainStep(
  model: ResNet18,
  optimizer: Optimizer,
  plan: FreezePlan,
  batch: Batch,
  opts: StepOptions & { gradNormsOf?: readonly string[]; microBatch?: number },
): StepResult {
  const limit = Math.max(1, Math.floor(opts.microBatch ?? maxMicroBatch(opts.imageSize)));
  // at least one part: an unlimited micro-batch (GPU backends) makes batch.n / limit 0
  const parts = Math.max(1, Math.ceil(batch.n / limit));
  const size = opts.imageSize * opts.imageSize * 3;
  const chunks: { prepare: () => { logits: () => tf.Tensor2D; y: tf.Tensor1D }; weight: number }[] = [];
  for (let i = 0, start = 0; i < parts; i++) {
    const n = Math.floor(batch.n / parts) + (i < batch.n % parts ? 1 : 0);
    const sub: Batch = {
      x: batch.x.subarray(start * size, (start + n) * size),
      y: batch.y.subarray(start, start + n),
      n,
    };
    chunks.push({
      prepare: () => {
        const { x, y } = inputs(sub, opts.imageSize);
        return { logits: () => model.forward(x, plan.trainStages), y };
      },
      weight: n / batch.n,
    });
    start += n;
  }
  return optimise(model, optimizer, plan, chunks, opts);
}

/**
 * The same step from cached rows (feature-cache.ts): for a head-only plan the loss is crossEntropy(head(features), y),
 * differentiated for fc only; for a partial plan the rows are the activations entering the first trainable stage
 * (`batch.at`) and the stages from there run as in trainStep. Both equal trainStep's, since nothing before the cut
 * trains or changes.
 */
export function headStep(
  model: ResNet18,
  optimizer: Optimizer,
  plan: FreezePlan,
  batch: FeatureBatch,
  opts: Omit<StepOptions, 'imageSize'> & { gradNormsOf?: readonly string[] },
): StepResult {
  const at = batch.at ?? 'fc';
  if (at === 'fc' && (plan.trainStages.size > 0 || plan.trainable.some((name) => !name.startsWith('fc.'))))
    throw new Error('headStep needs a head-only plan (only fc trains) for backbone features');
  return optimise(
    model,
    optimizer,
    plan,
    () => {
      const { features, y } = featureInputs(batch);
      return { logits: () => model.forwardFrom(features, at, plan.trainStages), y };
    },
    opts,
  );
}

type Prepare = () => { logits: () => tf.Tensor2D; y: tf.Tensor1D };

function optimise(
  model: ResNet18,
  optimizer: Optimizer,
  plan: FreezePlan,
  parts: Prepare | { prepare: Prepare; weight: number }[],
  opts: Omit<StepOptions, 'imageSize'> & { gradNormsOf?: readonly string[] },
): StepResult {
  const gradNorms = new Map<string, tf.Scalar>();
  const vars = plan.trainable.map((name) => model.variable(name));
  const list = typeof parts === 'function' ? [{ prepare: parts, weight: 1 }] : parts;
  // Each part in its own scope: its activations are freed before the next part runs; only loss and grads carry over.
  let loss: tf.Scalar | null = null;
  let gs: tf.Tensor[] | null = null;
  for (const { prepare, weight } of list) {
    const [value, ...grads] = tf.tidy(() => {
      const { logits, y } = prepare();
      const f = () => {
        const l = crossEntropy(logits(), y, opts.labelSmoothing);
        return weight === 1 ? l : (tf.mul(l, weight) as tf.Scalar);
      };
      const r = tf.variableGrads(f, vars);
      return [r.value, ...vars.map((v) => r.grads[v.name]!)];
    });
    if (!loss || !gs) {
      loss = value as tf.Scalar;
      gs = grads;
      continue;
    }
    const [l2, ...g2] = tf.tidy(() => [tf.add(loss!, value!), ...gs!.map((g, i) => tf.add(g, grads[i]!))]);
    tf.dispose([loss, value!, ...gs, ...grads]);
    loss = l2 as tf.Scalar;
    gs = g2;
  }
  try {
    tf.tidy(() => {
      let g = gs!;
      for (const name of opts.gradNormsOf ?? []) {
        const i = plan.trainable.indexOf(name);
        if (i >= 0) gradNorms.set(name, tf.keep(tf.norm(g[i]!) as tf.Scalar));
      }
      if (opts.gradClipNorm !== null) g = clipByGlobalNorm(g, opts.gradClipNorm).grads;
      optimizer.apply(
        plan.trainable.map((name, i) => ({ name, variable: vars[i]!, grad: g[i]! })),
        opts.lr,
      );
    });
  } finally {
    tf.dispose(gs!);
  }
  return { loss: loss!, gradNorms };
}

export function disposeStep(r: StepResult): void {
  r.loss.dispose();
  for (const t of r.gradNorms.values()) t.dispose();
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  perClass: (number | null)[];
  confusion: number[][];
  samples: number;
}

/** Eval-mode pass (running statistics) over every batch: mean cross-entropy, accuracy, per-class, confusion. */
export async function evaluate(model: ResNet18, source: AsyncIterable<Batch>, imageSize: number): Promise<EvalResult> {
  return accumulate(model, source, (batch) => {
    const { x, y } = inputs(batch, imageSize);
    return { logits: model.forward(x), y };
  });
}

/** `evaluate` from cached rows (eval mode): the rest of the network from each batch's cut (`at`). */
export async function evaluateFeatures(model: ResNet18, source: AsyncIterable<FeatureBatch>): Promise<EvalResult> {
  return accumulate(model, source, (batch) => {
    const { features, y } = featureInputs(batch);
    return { logits: model.forwardFrom(features, batch.at ?? 'fc'), y };
  });
}

async function accumulate<B extends { y: Int32Array; n: number }>(
  model: ResNet18,
  source: AsyncIterable<B>,
  forward: (batch: B) => { logits: tf.Tensor2D; y: tf.Tensor1D },
): Promise<EvalResult> {
  const confusion = new Confusion(model.numClasses);
  let lossSum = 0;
  let samples = 0;
  // each batch's results are read while the next batch is recorded (read-behind.ts)
  const reads = new ReadBehind<[ArrayLike<number>, ArrayLike<number>]>();
  try {
    for await (const batch of source) {
      const [lossT, predT] = tf.tidy(() => {
        const { logits, y } = forward(batch);
        return [tf.sum(perSampleCrossEntropy(logits, y)), tf.argMax(logits, 1)];
      });
      await reads.push(
        Promise.all([lossT!.data(), predT!.data()]),
        ([loss, pred]) => {
          lossSum += loss[0]!;
          samples += batch.n;
          confusion.add(batch.y, pred, batch.n);
        },
        () => tf.dispose([lossT!, predT!]),
      );
    }
    await reads.settle();
  } finally {
    reads.discard();
  }
  return {
    loss: samples === 0 ? 0 : lossSum / samples,
    accuracy: confusion.accuracy(),
    perClass: confusion.perClass(),
    confusion: confusion.counts,
    samples,
  };
}
