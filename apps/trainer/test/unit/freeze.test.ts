import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { randomStateDict } from '../../src/model/init';
import { ResNet18 } from '../../src/model/resnet18';
import { loadStateDict } from '../../src/model/weights';
import { freezePlan } from '../../src/train/freeze';
import { Sgd } from '../../src/train/optimizers';
import { disposeStep, trainStep } from '../../src/train/step';
import { sameBits } from '../helpers/reference';
import { syntheticBatches } from '../helpers/synthetic';

jest.setTimeout(60_000);

describe('freeze strategies', () => {
  let model: ResNet18;
  beforeAll(async () => {
    await selectBackend('wasm');
    model = new ResNet18(3);
  });
  afterAll(() => model.dispose());

  const snapshot = () =>
    new Map(model.tensors.map((d) => [d.name, new Float32Array(model.variable(d.name).dataSync())]));
  const changed = (before: Map<string, Float32Array>) =>
    model.tensors
      .filter((d) => !sameBits(before.get(d.name)!, model.variable(d.name).dataSync() as Float32Array))
      .map((d) => d.name);

  async function stepWith(freeze: Parameters<typeof freezePlan>[0]) {
    loadStateDict(model, randomStateDict(3, 3));
    const plan = freezePlan(freeze, model);
    const before = snapshot();
    const opt = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
    for await (const batch of syntheticBatches({ imageSize: 32, batchSize: 4, train: 4, val: 0, classes: 3 })(
      'train',
      1,
    )) {
      disposeStep(
        trainStep(model, opt, plan, batch, { imageSize: 32, lr: 0.1, labelSmoothing: 0, gradClipNorm: null }),
      );
    }
    opt.dispose();
    return { plan, changed: changed(before) };
  }

  it('head: only fc trains; the backbone and its BN statistics stay fixed', async () => {
    const { plan, changed } = await stepWith({ mode: 'head' });
    expect(plan.trainable).toEqual(['fc.weight', 'fc.bias']);
    expect(plan.trainStages.size).toBe(0);
    expect(changed).toEqual(['fc.weight', 'fc.bias']);
  });

  it('partial(1): layer4 and fc train; layer4 BN statistics update; earlier stages untouched', async () => {
    const { plan, changed } = await stepWith({ mode: 'partial', trainableStages: 1 });
    expect([...plan.trainStages]).toEqual(['layer4']);
    expect(plan.trainable.every((n) => n.startsWith('layer4.') || n.startsWith('fc.'))).toBe(true);
    expect(changed.every((n) => n.startsWith('layer4.') || n.startsWith('fc.'))).toBe(true);
    expect(changed).toContain('layer4.0.downsample.1.running_var');
    expect(changed).toContain('layer4.1.conv2.weight');
  });

  it('partial(3) and full', async () => {
    expect([...freezePlan({ mode: 'partial', trainableStages: 3 }, model).trainStages]).toEqual([
      'layer2',
      'layer3',
      'layer4',
    ]);
    const { plan, changed } = await stepWith({ mode: 'full' });
    expect(plan.trainable.length).toBe(62);
    expect(changed.length).toBe(model.tensors.length); // every parameter and running statistic moved
  });

  it('leaks no tensors per step', async () => {
    const plan = freezePlan({ mode: 'full' }, model);
    const opt = new Sgd({ momentum: 0.9, weightDecay: 1e-4, nesterov: true });
    const batch = { x: new Float32Array(2 * 32 * 32 * 3).fill(0.5), y: Int32Array.of(0, 1), n: 2 };
    disposeStep(trainStep(model, opt, plan, batch, { imageSize: 32, lr: 0.01, labelSmoothing: 0.1, gradClipNorm: 1 }));
    const n = tf.memory().numTensors;
    disposeStep(trainStep(model, opt, plan, batch, { imageSize: 32, lr: 0.01, labelSmoothing: 0.1, gradClipNorm: 1 }));
    expect(tf.memory().numTensors).toBe(n);
    opt.dispose();
  });
});
