/**
 * Throughput of the trainer's own step code on random data (shared by bench/trainer/throughput.ts and
 * backend-check.ts): img/s of training steps (forward, backward, SGD momentum 0.9 update; every step's loss read
 * back one step late, as the trainer's loop does: train/lagged-loss.ts) for a freeze mode, and of inference.
 */
import * as tf from '@tensorflow/tfjs-core';
import { directDispatchCount } from '../../apps/trainer/src/backends/webgpu-direct';
import { ResNet18 } from '../../apps/trainer/src/model/resnet18';
import { freezePlan } from '../../apps/trainer/src/train/freeze';
import { LaggedLoss } from '../../apps/trainer/src/train/lagged-loss';
import { Sgd } from '../../apps/trainer/src/train/optimizers';
import { ReadBehind } from '../../apps/trainer/src/train/read-behind';
import { trainStep } from '../../apps/trainer/src/train/step';

export type Mode = 'full' | 'partial' | 'head';

const round = (v: number) => Math.round(v * 100) / 100;

function randomBatch(size: number, batch: number) {
  const x = new Float32Array(batch * size * size * 3).map((_, i) => Math.sin(i) * 0.5);
  const y = Int32Array.from({ length: batch }, (_, i) => i % 10);
  return { x, y };
}

interface Counted {
  recordAndSubmit: (...a: unknown[]) => unknown;
  submitQueue: () => unknown;
}

/** Counts the webgpu backend's dispatches (TF.js's and ours) and command submissions while `fn` runs (null on other backends). */
async function countDispatches(fn: () => Promise<void>): Promise<{ dispatches: number; submits: number } | null> {
  if (tf.getBackend() !== 'webgpu') {
    await fn();
    return null;
  }
  const b = tf.backend() as unknown as Counted;
  const [record, submit] = [b.recordAndSubmit, b.submitQueue];
  const n = { dispatches: 0, submits: 0 };
  b.recordAndSubmit = (...a) => {
    n.dispatches++;
    return record.apply(b, a);
  };
  b.submitQueue = () => {
    n.submits++;
    return submit.apply(b);
  };
  const direct = directDispatchCount(); // our kernels' dispatches (webgpu-direct.ts) bypass recordAndSubmit
  try {
    await fn();
  } finally {
    b.recordAndSubmit = record;
    b.submitQueue = submit;
  }
  n.dispatches += directDispatchCount() - direct;
  return n;
}

/**
 * Training img/s for `mode` (partial = layer4 + fc, as the spec's default trainableStages 1), after one warm-up; on
 * webgpu also the dispatches and submissions of one step.
 */
export async function measureTrain(
  size: number,
  batch: number,
  steps: number,
  mode: Mode,
): Promise<{
  imgS: number;
  /** Milliseconds per step spent in trainStep itself (recording; on webgpu the GPU works asynchronously after it). */
  recordMsPerStep: number;
  dispatches?: { dispatchesPerStep: number; submitsPerStep: number };
}> {
  const model = new ResNet18(10);
  const opt = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
  const plan = freezePlan(mode === 'partial' ? { mode, trainableStages: 1 } : { mode }, model);
  const { x, y } = randomBatch(size, batch);
  let recordMs = 0;
  const losses = new LaggedLoss();
  let step = 0;
  const once = async () => {
    const t = performance.now();
    const r = trainStep(
      model,
      opt,
      plan,
      { x, y, n: batch },
      { imageSize: size, lr: 0.01, labelSmoothing: 0, gradClipNorm: null },
    );
    recordMs += performance.now() - t;
    await losses.push(r, { n: batch, epoch: 1, step: step++, lr: 0.01 });
  };
  try {
    await once(); // warm-up: first-use allocations, kernel setup
    await losses.settle();
    const counted = await countDispatches(async () => {
      await once();
      await losses.settle();
    });
    recordMs = 0;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await once();
    await losses.settle();
    const imgS = round((steps * batch) / ((performance.now() - t0) / 1000));
    const recordMsPerStep = round(recordMs / steps);
    return counted
      ? {
          imgS,
          recordMsPerStep,
          dispatches: { dispatchesPerStep: counted.dispatches, submitsPerStep: counted.submits },
        }
      : { imgS, recordMsPerStep };
  } finally {
    losses.discard();
    opt.dispose();
    model.dispose();
  }
}

/** Inference img/s (eval mode, logits read back one batch late); on webgpu also the dispatches of one batch. */
export async function measureInfer(
  size: number,
  batch: number,
  steps: number,
): Promise<{ imgS: number; dispatchesPerBatch?: number }> {
  const model = new ResNet18(10);
  const xt = tf.tensor4d(randomBatch(size, batch).x, [batch, size, size, 3]);
  // each batch's logits are read while the next batch is recorded, as the trainer's evaluate does (read-behind.ts)
  const reads = new ReadBehind<unknown>();
  const once = async () => {
    const t = tf.tidy(() => model.forward(xt));
    await reads.push(
      t.data(),
      () => undefined,
      () => t.dispose(),
    );
  };
  try {
    await once();
    await reads.settle();
    const counted = await countDispatches(async () => {
      await once();
      await reads.settle();
    });
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await once();
    await reads.settle();
    const imgS = round((steps * batch) / ((performance.now() - t0) / 1000));
    return counted ? { imgS, dispatchesPerBatch: counted.dispatches } : { imgS };
  } finally {
    reads.discard();
    xt.dispose();
    model.dispose();
  }
}
