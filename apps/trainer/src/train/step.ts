/** One optimisation step and one evaluation pass over batches. */
import * as tf from '@tensorflow/tfjs-core';
import { FEATURES } from '../model/architecture';
import type { ResNet18 } from '../model/resnet18';
import { clipByGlobalNorm } from './clip';
import type { FreezePlan } from './freeze';
import { crossEntropy, perSampleCrossEntropy } from './loss';
import { Confusion } from './metrics';
import type { Optimizer } from './optimizers';

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

/** A batch as backbone features: n × FEATURES float32 (row-major), labels, size. */
export interface FeatureBatch {
  features: Float32Array;
  y: Int32Array;
  n: number;
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

function featureInputs(batch: FeatureBatch): { features: tf.Tensor2D; y: tf.Tensor1D } {
  if (batch.features.length !== batch.n * FEATURES)
    throw new Error(`feature batch of ${batch.n} has ${batch.features.length} values, expected ${batch.n * FEATURES}`);
  return { features: tf.tensor2d(batch.features, [batch.n, FEATURES]), y: tf.tensor1d(batch.y, 'int32') };
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
export function trainStep(
  model: ResNet18,
  optimizer: Optimizer,
  plan: FreezePlan,
  batch: Batch,
  opts: StepOptions & { gradNormsOf?: readonly string[] },
): StepResult {
  return optimise(
    model,
    optimizer,
    plan,
    () => {
      const { x, y } = inputs(batch, opts.imageSize);
      return { logits: () => model.forward(x, plan.trainStages), y };
    },
    opts,
  );
}

/**
 * The same step for a head-only plan from precomputed backbone features (n × 512, row-major; see feature-cache.ts):
 * the loss is crossEntropy(head(features), y), differentiated for fc.weight and fc.bias only — the function trainStep
 * differentiates when no backbone stage trains, since the backbone's output does not depend on those variables.
 */
export function headStep(
  model: ResNet18,
  optimizer: Optimizer,
  plan: FreezePlan,
  batch: FeatureBatch,
  opts: Omit<StepOptions, 'imageSize'> & { gradNormsOf?: readonly string[] },
): StepResult {
  if (plan.trainStages.size > 0 || plan.trainable.some((name) => !name.startsWith('fc.')))
    throw new Error('headStep needs a head-only plan (only fc trains)');
  return optimise(
    model,
    optimizer,
    plan,
    () => {
      const { features, y } = featureInputs(batch);
      return { logits: () => model.head(features), y };
    },
    opts,
  );
}

function optimise(
  model: ResNet18,
  optimizer: Optimizer,
  plan: FreezePlan,
  prepare: () => { logits: () => tf.Tensor2D; y: tf.Tensor1D },
  opts: Omit<StepOptions, 'imageSize'> & { gradNormsOf?: readonly string[] },
): StepResult {
  const gradNorms = new Map<string, tf.Scalar>();
  const loss = tf.tidy(() => {
    const { logits, y } = prepare();
    const vars = plan.trainable.map((name) => model.variable(name));
    const { value, grads } = tf.variableGrads(() => crossEntropy(logits(), y, opts.labelSmoothing), vars);
    let gs = vars.map((v) => grads[v.name]!);
    for (const name of opts.gradNormsOf ?? []) {
      const i = plan.trainable.indexOf(name);
      if (i >= 0) gradNorms.set(name, tf.keep(tf.norm(gs[i]!) as tf.Scalar));
    }
    if (opts.gradClipNorm !== null) gs = clipByGlobalNorm(gs, opts.gradClipNorm).grads;
    optimizer.apply(
      plan.trainable.map((name, i) => ({ name, variable: vars[i]!, grad: gs[i]! })),
      opts.lr,
    );
    return value;
  });
  return { loss, gradNorms };
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

/** `evaluate` from precomputed backbone features (eval mode): the head applied to each batch's features. */
export async function evaluateFeatures(model: ResNet18, source: AsyncIterable<FeatureBatch>): Promise<EvalResult> {
  return accumulate(model, source, (batch) => {
    const { features, y } = featureInputs(batch);
    return { logits: model.head(features), y };
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
  for await (const batch of source) {
    const [lossT, predT] = tf.tidy(() => {
      const { logits, y } = forward(batch);
      return [tf.sum(perSampleCrossEntropy(logits, y)), tf.argMax(logits, 1)];
    });
    const [loss, pred] = await Promise.all([lossT.data(), predT.data()]);
    lossT.dispose();
    predT.dispose();
    lossSum += loss[0]!;
    samples += batch.n;
    confusion.add(batch.y, pred, batch.n);
  }
  return {
    loss: samples === 0 ? 0 : lossSum / samples,
    accuracy: confusion.accuracy(),
    perClass: confusion.perClass(),
    confusion: confusion.counts,
    samples,
  };
}
