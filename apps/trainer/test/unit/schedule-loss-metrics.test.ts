import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { clipByGlobalNorm, globalNorm } from '../../src/train/clip';
import { crossEntropy, perSampleCrossEntropy } from '../../src/train/loss';
import { bestEpoch, Confusion, type EpochMetrics, epochLine, shouldStopEarly } from '../../src/train/metrics';
import { learningRate } from '../../src/train/schedule';
import { finalFeatureSize, tooSmallForTraining } from '../../src/train/step';

describe('learning-rate schedules', () => {
  it('StepLR(stepSize, gamma) per epoch', () => {
    const s = { type: 'step' as const, stepSize: 7, gamma: 0.1 };
    expect([0, 6, 7, 13, 14].map((e) => learningRate(s, 0.001, e, 25))).toEqual([
      0.001,
      0.001,
      0.001 * 0.1,
      0.001 * 0.1,
      0.001 * 0.1 ** 2,
    ]);
  });

  it('cosine with warm-up, reaching minLr at the end', () => {
    const s = { type: 'cosine' as const, warmupEpochs: 2, minLr: 0.001 };
    const lrs = Array.from({ length: 10 }, (_, e) => learningRate(s, 0.1, e, 10));
    expect(lrs[0]).toBeCloseTo(0.1 / 3, 12);
    expect(lrs[1]).toBeCloseTo(0.2 / 3, 12);
    expect(lrs[2]).toBeCloseTo(0.1, 12); // cosine starts at the base lr
    expect(lrs[6]).toBeCloseTo(0.001 + (0.099 * (1 + Math.cos(Math.PI * 0.5))) / 2, 12);
    for (let e = 3; e < 10; e++) expect(lrs[e]!).toBeLessThan(lrs[e - 1]!);
    expect(lrs[9]!).toBeGreaterThan(0.001);
    expect(learningRate({ type: 'constant' }, 0.3, 99, 100)).toBe(0.3);
  });
});

describe('losses and clipping', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it("cross-entropy with label smoothing matches torch's definition", () => {
    const logits = [
      [2, -1, 0.5],
      [0.1, 0.2, 0.3],
    ];
    const labels = [0, 2];
    const eps = 0.1;
    const expected = logits.map((row, n) => {
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      const logp = row.map((v) => v - lse);
      return (1 - eps) * -logp[labels[n]!]! + eps * -(logp.reduce((a, b) => a + b, 0) / row.length);
    });
    tf.tidy(() => {
      const l = tf.tensor2d(logits);
      const y = tf.tensor1d(labels, 'int32');
      const got = perSampleCrossEntropy(l, y, eps).dataSync();
      for (const [i, v] of expected.entries()) expect(got[i]).toBeCloseTo(v, 5);
      expect(crossEntropy(l, y, eps).dataSync()[0]).toBeCloseTo((expected[0]! + expected[1]!) / 2, 5);
      const plain = perSampleCrossEntropy(l, y).dataSync()[0]!;
      expect(plain).toBeCloseTo(-(2 - Math.log(Math.exp(2) + Math.exp(-1) + Math.exp(0.5))), 5);
    });
  });

  it('clips by global norm like clip_grad_norm_', () => {
    tf.tidy(() => {
      const g = [tf.tensor1d([3, 0]), tf.tensor2d([[0, 4]])]; // global norm 5
      expect(globalNorm(g).dataSync()[0]).toBeCloseTo(5, 5);
      const clipped = clipByGlobalNorm(g, 1);
      expect(clipped.norm.dataSync()[0]).toBeCloseTo(5, 5);
      expect(clipped.grads[0]!.dataSync()[0]).toBeCloseTo(3 / (5 + 1e-6), 5);
      expect(clipped.grads[1]!.dataSync()[1]).toBeCloseTo(4 / (5 + 1e-6), 5);
      const loose = clipByGlobalNorm(g, 10);
      expect([...loose.grads[0]!.dataSync()]).toEqual([3, 0]);
    });
  });
});

const epoch = (e: number, valLoss: number, valAcc: number): EpochMetrics => ({
  epoch: e,
  attempt: 1,
  trainLoss: 1,
  valLoss,
  valAcc,
  perClassAcc: [],
  confusion: [],
  lr: 0.1,
  seconds: 1,
  checkpoint: `c${e}/`,
});

describe('metrics', () => {
  it('confusion matrix, accuracy and per-class accuracy', () => {
    const c = new Confusion(3);
    c.add([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2]);
    expect(c.counts).toEqual([
      [1, 1, 0],
      [0, 1, 0],
      [1, 0, 2],
    ]);
    expect(c.accuracy()).toBeCloseTo(4 / 6, 12);
    expect(c.perClass()).toEqual([0.5, 1, 2 / 3]);
    expect(new Confusion(2).perClass()).toEqual([null, null]);
    expect(() => c.add([5], [0])).toThrow(RangeError);
  });

  it('best epoch is the highest val accuracy, earliest on ties', () => {
    expect(bestEpoch([epoch(1, 1, 0.5), epoch(2, 0.9, 0.7), epoch(3, 0.8, 0.7)])!.epoch).toBe(2);
    expect(bestEpoch([])).toBeNull();
  });

  it('early stopping on validation loss with patience and minDelta', () => {
    const h = [epoch(1, 1.0, 0), epoch(2, 0.8, 0), epoch(3, 0.79, 0), epoch(4, 0.85, 0)];
    expect(shouldStopEarly(h, null)).toBe(false);
    expect(shouldStopEarly(h, { patience: 2, minDelta: 0 })).toBe(false); // epoch 3 improved
    expect(shouldStopEarly(h, { patience: 2, minDelta: 0.05 })).toBe(true); // …but by less than minDelta
    expect(shouldStopEarly(h, { patience: 4, minDelta: 0 })).toBe(false);
    expect(
      shouldStopEarly(h.slice(0, 3).concat(epoch(4, 0.9, 0), epoch(5, 0.95, 0)), { patience: 2, minDelta: 0 }),
    ).toBe(true);
  });

  it('formats the per-epoch line exactly', () => {
    expect(epochLine({ epoch: 3, trainLoss: 0.123456, valLoss: 1.5, valAcc: 0.875 }, 25)).toBe(
      'Epoch 3/25 | Train Loss: 0.1235 | Val Loss: 1.5000 | Val Acc: 87.50%',
    );
  });

  it('knows when batch norm cannot train on a batch', () => {
    expect(finalFeatureSize(224)).toBe(7);
    expect(finalFeatureSize(64)).toBe(2);
    expect(finalFeatureSize(32)).toBe(1);
    const full = { trainable: [], trainStages: new Set(['stem' as const]) };
    expect(tooSmallForTraining(1, 32, full)).toBe(true);
    expect(tooSmallForTraining(2, 32, full)).toBe(false);
    expect(tooSmallForTraining(1, 64, full)).toBe(false);
    expect(tooSmallForTraining(1, 32, { trainable: [], trainStages: new Set() })).toBe(false);
  });
});
