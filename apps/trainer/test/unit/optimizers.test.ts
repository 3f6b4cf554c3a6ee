/**
 * SGD and AdamW against torch.optim's update rules, re-derived in float64 JavaScript on small vectors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { AdamW, createOptimizer, Sgd } from '../../src/train/optimizers';
import { relError } from '../helpers/reference';

const P0 = [0.5, -1.25, 2, 0.1];
const GRADS = [
  [0.3, -0.2, 0.05, 1],
  [-0.1, 0.4, 0.2, -0.5],
  [0.25, 0.25, -0.75, 0.1],
];

function run(opt: Sgd | AdamW, lrs: number[]): number[] {
  const p = tf.variable(tf.tensor1d(P0));
  GRADS.forEach((g, i) => {
    tf.tidy(() => opt.apply([{ name: 'w', variable: p, grad: tf.tensor1d(g) }], lrs[i]!));
  });
  const out = [...p.dataSync()];
  p.dispose();
  return out;
}

describe('optimizers (torch.optim semantics)', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('SGD with momentum, weight decay, plain and nesterov', async () => {
    for (const nesterov of [false, true]) {
      const mu = 0.9;
      const wd = 0.01;
      const lrs = [0.1, 0.05, 0.02];
      const p = [...P0];
      let buf: number[] | null = null;
      GRADS.forEach((g0, s) => {
        const g = g0.map((v, i) => v + wd * p[i]!);
        buf = buf === null ? [...g] : buf.map((b, i) => mu * b + g[i]!);
        const b = buf;
        const upd = nesterov ? g.map((v, i) => v + mu * b[i]!) : b;
        for (let i = 0; i < p.length; i++) p[i]! -= lrs[s]! * upd[i]!;
      });
      const opt = new Sgd({ momentum: mu, weightDecay: wd, nesterov });
      expect(relError(run(opt, lrs), p)).toBeLessThan(1e-6);
      expect(opt.steps).toBe(3);
      expect([...(await opt.exportState()).tensors.keys()]).toEqual(['w.momentum_buffer']);
      opt.dispose();
    }
  });

  it('SGD without momentum keeps no state', async () => {
    const opt = new Sgd({ momentum: 0, weightDecay: 0, nesterov: false });
    const expected = [...P0];
    for (const g of GRADS) {
      for (const [i, v] of g.entries()) expected[i]! -= 0.1 * v;
    }
    expect(relError(run(opt, [0.1, 0.1, 0.1]), expected)).toBeLessThan(1e-6);
    expect((await opt.exportState()).tensors.size).toBe(0);
  });

  it('AdamW (decoupled weight decay, bias correction)', () => {
    const [b1, b2, eps, wd, lr] = [0.9, 0.999, 1e-8, 0.01, 0.01];
    const p = [...P0];
    const m = [0, 0, 0, 0];
    const v = [0, 0, 0, 0];
    GRADS.forEach((g, s) => {
      const t = s + 1;
      for (let i = 0; i < 4; i++) {
        p[i]! *= 1 - lr * wd;
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
        const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** t) + eps;
        p[i]! -= (lr / (1 - b1 ** t)) * (m[i]! / denom);
      }
    });
    const opt = createOptimizer({ type: 'adamw', lr, beta1: b1, beta2: b2, eps, weightDecay: wd }) as AdamW;
    expect(relError(run(opt, [lr, lr, lr]), p)).toBeLessThan(1e-6);
    expect(opt.type).toBe('adamw');
  });

  it('exports and imports state so a resumed optimizer continues identically', async () => {
    const a = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
    const pa = tf.variable(tf.tensor1d(P0));
    tf.tidy(() => a.apply([{ name: 'w', variable: pa, grad: tf.tensor1d(GRADS[0]!) }], 0.1));
    const b = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
    b.importState(await a.exportState());
    const pb = tf.variable(tf.clone(pa));
    for (const [opt, p] of [
      [a, pa],
      [b, pb],
    ] as const)
      tf.tidy(() => opt.apply([{ name: 'w', variable: p, grad: tf.tensor1d(GRADS[1]!) }], 0.1));
    expect([...pb.dataSync()]).toEqual([...pa.dataSync()]);
    expect(b.steps).toBe(2);
    for (const t of [pa, pb]) t.dispose();
    a.dispose();
    b.dispose();
  });

  it('holds no tensors beyond its state across steps', () => {
    const opt = new AdamW({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    const p = tf.variable(tf.tensor1d(P0));
    tf.tidy(() => opt.apply([{ name: 'w', variable: p, grad: tf.tensor1d(GRADS[0]!) }], 0.1));
    const n = tf.memory().numTensors;
    tf.tidy(() => opt.apply([{ name: 'w', variable: p, grad: tf.tensor1d(GRADS[1]!) }], 0.1));
    expect(tf.memory().numTensors).toBe(n);
    opt.dispose();
    p.dispose();
  });
});
