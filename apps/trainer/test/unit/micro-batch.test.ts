/**
 * Micro-batching (train/step.ts): a batch larger than one forward/backward may hold on wasm is streamed in parts
 * with accumulated gradients. Head-only it gives the unsplit step's update exactly (no batch norm trains); with
 * training batch norms each part updates the running statistics once. Intermediate tensors are all freed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { referenceStateDict } from '../../src/model/reference-init';
import { ResNet18 } from '../../src/model/resnet18';
import { loadStateDict } from '../../src/model/weights';
import { freezePlan } from '../../src/train/freeze';
import { Sgd } from '../../src/train/optimizers';
import { disposeStep, maxMicroBatch, trainStep } from '../../src/train/step';
import { seeded } from '../helpers/conv-cases';
import { relError } from '../helpers/reference';

const SIZE = 32;

async function step(mode: 'head' | 'full', n: number, microBatch: number | undefined, clip: number | null) {
  const model = new ResNet18(4);
  loadStateDict(model, referenceStateDict(3, 4));
  const opt = new Sgd({ momentum: 0.9, weightDecay: 1e-4, nesterov: false });
  const plan = freezePlan({ mode }, model);
  const batch = { x: seeded(n * SIZE * SIZE * 3, 5), y: Int32Array.from({ length: n }, (_, i) => i % 4), n };
  const opts = { imageSize: SIZE, lr: 0.1, labelSmoothing: 0.1, gradClipNorm: clip, microBatch };
  // Two steps (the second with momentum): tensors alive after each must be the same (nothing leaks per step).
  let loss = 0;
  let norm = 0;
  const alive: number[] = [];
  for (let i = 0; i < 2; i++) {
    const r = trainStep(model, opt, plan, batch, { ...opts, gradNormsOf: ['fc.weight'] });
    loss = (await r.loss.data())[0]!;
    norm = (await r.gradNorms.get('fc.weight')!.data())[0]!;
    disposeStep(r);
    alive.push(tf.memory().numTensors);
  }
  const out = {
    loss,
    norm,
    fc: await model.variable('fc.weight').data(),
    bnTracked: model.numBatchesTracked.get('bn1') ?? 0,
    runningVar: await model.variable('bn1.running_var').data(),
    leaked: alive[1]! - alive[0]!,
  };
  opt.dispose();
  model.dispose();
  return out;
}

describe('micro-batching', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it.each([
    [7, 3, null],
    [8, 2, 0.5],
  ])('head-only: batch %i in parts of %i equals the unsplit step (clip %s)', async (n, part, clip) => {
    const whole = await step('head', n, undefined, clip);
    const split = await step('head', n, part, clip);
    expect(Math.abs(split.loss - whole.loss) / whole.loss).toBeLessThan(1e-5);
    expect(Math.abs(split.norm - whole.norm) / whole.norm).toBeLessThan(1e-5);
    expect(relError(split.fc, whole.fc)).toBeLessThan(1e-5);
    expect(split.leaked).toBe(0);
  });

  it('full fine-tuning in parts: one batch-norm update per part, finite loss, nothing leaked', async () => {
    const split = await step('full', 6, 2, null);
    expect(split.bnTracked).toBe(6); // two steps of three parts
    expect(Number.isFinite(split.loss)).toBe(true);
    const whole = await step('full', 6, undefined, null);
    expect(whole.bnTracked).toBe(2);
    // Each part normalises with its own statistics and moves the running variance once.
    expect(split.loss).toBeGreaterThan(0);
    expect(relError(split.runningVar, whole.runningVar)).toBeGreaterThan(1e-4);
    expect(split.leaked).toBe(0);
  });

  it('bounds one pass on wasm by the image size (224 px: at most 41 images, as measured to fit the 4 GiB heap)', () => {
    expect(maxMicroBatch(224)).toBe(41);
    expect(maxMicroBatch(448)).toBe(10);
    expect(maxMicroBatch(32)).toBeGreaterThan(512);
  });

  it('an unbounded micro-batch (GPU backends: maxMicroBatch is Infinity) runs the batch whole', async () => {
    const whole = await step('full', 4, undefined, null);
    const unbounded = await step('full', 4, Number.POSITIVE_INFINITY, null);
    expect(unbounded.bnTracked).toBe(2);
    expect(Math.abs(unbounded.loss - whole.loss) / whole.loss).toBeLessThan(1e-6);
    expect(unbounded.leaked).toBe(0);
  });
});
