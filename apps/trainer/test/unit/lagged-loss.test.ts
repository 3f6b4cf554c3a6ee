/**
 * Each step's loss read one step late (the loop's LaggedLoss): the same sums as reading at once, a non-finite loss
 * still names its own epoch and step, and no scalar is left behind on any path.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { DivergedError, LaggedLoss } from '../../src/train/lagged-loss';
import type { StepResult } from '../../src/train/step';

const result = (loss: number): StepResult => ({
  loss: tf.scalar(loss),
  gradNorms: new Map([['fc.weight', tf.scalar(1)]]),
});

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('LaggedLoss', () => {
  it('reads step i when step i + 1 arrives, and the last one on settle', async () => {
    const before = tf.memory().numTensors;
    const l = new LaggedLoss({ lossSum: 10, samples: 5 }); // carried from a resumed epoch
    await l.push(result(1), { n: 4, epoch: 1, step: 0, lr: 0.1 });
    expect({ lossSum: l.lossSum, samples: l.samples }).toEqual({ lossSum: 10, samples: 5 });
    expect(tf.memory().numTensors).toBe(before + 2); // the pending step's scalars are kept
    await l.push(result(2), { n: 3, epoch: 1, step: 1, lr: 0.1 });
    expect({ lossSum: l.lossSum, samples: l.samples }).toEqual({ lossSum: 14, samples: 9 });
    await l.settle();
    expect({ lossSum: l.lossSum, samples: l.samples }).toEqual({ lossSum: 20, samples: 12 });
    await l.settle(); // nothing pending: a no-op
    expect(l.samples).toBe(12);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('throws DivergedError naming the step whose loss was not finite, and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const l = new LaggedLoss();
    await l.push(result(1), { n: 2, epoch: 3, step: 0, lr: 0.5 });
    await l.push(result(Number.NaN), { n: 2, epoch: 3, step: 1, lr: 0.5 });
    const err = await l.push(result(1), { n: 2, epoch: 3, step: 2, lr: 0.5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DivergedError);
    expect((err as Error).message).toBe('training diverged: loss is NaN at epoch 3, step 1 (lr 0.5)');
    expect(l.samples).toBe(2); // the diverged step is not counted
    l.discard(); // the step recorded after it, never read
    expect(tf.memory().numTensors).toBe(before);
  });

  it('sees an infinite loss on settle as well', async () => {
    const l = new LaggedLoss();
    await l.push(result(Number.POSITIVE_INFINITY), { n: 1, epoch: 1, step: 7, lr: 1 });
    await expect(l.settle()).rejects.toThrow('loss is Infinity at epoch 1, step 7');
  });
});
