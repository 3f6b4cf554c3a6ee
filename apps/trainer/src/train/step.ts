/** One optimisation step and one evaluation pass over batches. */
import * as tf from '@tensorflow/tfjs-core';
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
  const gradNorms = new Map<string, tf.Scalar>();
  const loss = tf.tidy(() => {
    const { x, y } = inputs(batch, opts.imageSize);
    const vars = plan.trainable.map((name) => model.variable(name));
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(model.forward(x, plan.trainStages), y, opts.labelSmoothing),
      vars,
    );
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
  const confusion = new Confusion(model.numClasses);
  let lossSum = 0;
  let samples = 0;
  for await (const batch of source) {
    const [lossT, predT] = tf.tidy(() => {
      const { x, y } = inputs(batch, imageSize);
      const logits = model.forward(x);
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
