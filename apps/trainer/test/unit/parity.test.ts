/**
 * ResNet18 against torchvision (fixtures/resnet18/reference-seed1.json), on the wasm backend with this repository's
 * convolution-gradient kernels. Errors are norm-based relative errors ‖ours − ref‖₂ / ‖ref‖₂ over each whole
 * output (see helpers/reference.ts): eval logits within 1e-4, the training step within 1e-3 (README's tolerances).
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { nchwToNhwc, referenceInput, referenceStateDict } from '../../src/model/reference-init';
import { ResNet18 } from '../../src/model/resnet18';
import { loadStateDict } from '../../src/model/weights';
import { freezePlan } from '../../src/train/freeze';
import { Sgd } from '../../src/train/optimizers';
import { disposeStep, trainStep } from '../../src/train/step';
import { loadReference, relError, relScalar } from '../helpers/reference';

jest.setTimeout(120_000);

describe('ResNet18 parity with torchvision (seed 1, 10 classes)', () => {
  const ref = loadReference();
  let model: ResNet18;
  const input = (name: string, n: number, s: number) =>
    nchwToNhwc(referenceInput(name, [n, 3, s, s], ref.seed), [n, 3, s, s]);
  const logits = (x: Float32Array, n: number, s: number) =>
    tf.tidy(() => [...model.forward(tf.tensor4d(x, [n, s, s, 3])).dataSync()]);

  beforeAll(async () => {
    expect(await selectBackend('wasm')).toBe('wasm');
    model = new ResNet18(ref.num_classes);
    loadStateDict(model, referenceStateDict(ref.seed, ref.num_classes));
  });
  afterAll(() => model.dispose());

  it('eval logits at 224 px', () => {
    expect(relError(logits(input('input224', 2, 224), 2, 224), ref.eval_logits_224)).toBeLessThan(1e-4);
  });

  it('eval logits at 64 px', () => {
    expect(relError(logits(input('input64', 4, 64), 4, 64), ref.eval_logits_64)).toBeLessThan(1e-4);
  });

  it('one SGD step (lr 0.1, momentum 0.9) in train mode on input64, labels [1, 3, 5, 7]', () => {
    const x = input('input64', 4, 64);
    const optimizer = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
    const step = trainStep(
      model,
      optimizer,
      freezePlan({ mode: 'full' }, model),
      { x, y: Int32Array.of(1, 3, 5, 7), n: 4 },
      {
        imageSize: 64,
        lr: 0.1,
        labelSmoothing: 0,
        gradClipNorm: null,
        gradNormsOf: ['fc.weight', 'conv1.weight'],
      },
    );
    expect(relScalar(step.loss.dataSync()[0]!, ref.train_loss_step1)).toBeLessThan(1e-3);
    expect(relScalar(step.gradNorms.get('fc.weight')!.dataSync()[0]!, ref.grad_norm_fc_weight)).toBeLessThan(1e-3);
    expect(relScalar(step.gradNorms.get('conv1.weight')!.dataSync()[0]!, ref.grad_norm_conv1_weight)).toBeLessThan(
      1e-3,
    );
    disposeStep(step);
    const runningVar = [...model.variable('bn1.running_var').dataSync()].slice(0, 8);
    expect(relError(runningVar, ref.bn1_running_var_after_step)).toBeLessThan(1e-3);
    expect(relError(logits(x, 4, 64), ref.eval_logits_64_after_step)).toBeLessThan(1e-3);
    expect(model.numBatchesTracked.get('bn1')).toBe(1);
    optimizer.dispose();
  });
});
