/**
 * Optimizers with torch.optim semantics, over named tf.Variables:
 * - SGD (torch.optim.SGD, dampening 0): g += wd·p; buf = g on the first step, then buf = μ·buf + g;
 *   update = nesterov ? g + μ·buf : buf; p -= lr·update.
 * - AdamW (torch.optim.AdamW, amsgrad off): p *= 1 − lr·wd; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
 *   p −= (lr / (1−β1^t)) · m / (sqrt(v) / sqrt(1−β2^t) + eps).
 * State tensors are named like torch's per-parameter state (`<param>.momentum_buffer`, `<param>.exp_avg`,
 * `<param>.exp_avg_sq`) so checkpoints are self-describing.
 */
import type { JobSpec } from '@gpulab/core';
import * as tf from '@tensorflow/tfjs-core';
import { SGD_STEP_KERNEL } from '../backends/native-kernels';
import type { StateDict } from '../model/state-dict';

export interface OptimizerState {
  /** Named state tensors (float32, the parameter's TF.js layout). */
  tensors: StateDict;
  /** Scalars: the number of steps taken. */
  step: number;
}

export interface Optimizer {
  readonly type: 'sgd' | 'adamw';
  /** Steps taken so far. */
  readonly steps: number;
  /** One update of every parameter in `params` with its gradient, at learning rate `lr`. Run inside tf.tidy. */
  apply(params: ReadonlyArray<{ name: string; variable: tf.Variable; grad: tf.Tensor }>, lr: number): void;
  /** The state, read asynchronously (webgpu cannot read tensors synchronously in Node). */
  exportState(): Promise<OptimizerState>;
  importState(state: OptimizerState): void;
  dispose(): void;
}

abstract class BaseOptimizer {
  protected readonly slots = new Map<string, tf.Variable>();
  steps = 0;

  protected slot(key: string, init: () => tf.Tensor): tf.Variable {
    let v = this.slots.get(key);
    if (!v) {
      v = tf.tidy(() => tf.variable(init(), false));
      this.slots.set(key, v);
    }
    return v;
  }

  async exportState(): Promise<OptimizerState> {
    const tensors: StateDict = new Map();
    for (const [k, v] of this.slots) tensors.set(k, { shape: [...v.shape], data: new Float32Array(await v.data()) });
    return { tensors, step: this.steps };
  }

  importState(state: OptimizerState): void {
    this.dispose();
    for (const [k, t] of state.tensors)
      this.slots.set(
        k,
        tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape, 'float32'), false)),
      );
    this.steps = state.step;
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}

type SgdSpec = Extract<JobSpec['optimizer'], { type: 'sgd' }>;
type AdamWSpec = Extract<JobSpec['optimizer'], { type: 'adamw' }>;

export class Sgd extends BaseOptimizer implements Optimizer {
  readonly type = 'sgd' as const;
  constructor(private readonly cfg: Omit<SgdSpec, 'type' | 'lr'>) {
    super();
  }

  apply(params: ReadonlyArray<{ name: string; variable: tf.Variable; grad: tf.Tensor }>, lr: number): void {
    const { momentum, weightDecay, nesterov } = this.cfg;
    const fused = momentum !== 0 && Boolean(tf.getKernel(SGD_STEP_KERNEL, tf.getBackend()));
    for (const { name, variable: p, grad } of params) {
      const key = `${name}.momentum_buffer`;
      const existing = momentum !== 0 ? this.slots.get(key) : undefined;
      if (existing && fused) {
        // The update below in one pass over the parameter (native-kernels.ts), same float operations in the same order.
        const [p1, buf1] = tf
          .engine()
          .runKernel(
            SGD_STEP_KERNEL,
            { p, buf: existing, g: grad } as tf.NamedTensorMap,
            { lr, momentum, weightDecay, nesterov } as never,
          ) as tf.Tensor[];
        existing.assign(buf1!);
        p.assign(p1!);
        continue;
      }
      let g = weightDecay !== 0 ? tf.add(grad, tf.mul(p, weightDecay)) : grad;
      if (momentum !== 0) {
        let buf: tf.Tensor;
        if (!existing) {
          buf = g;
          this.slot(key, () => tf.clone(g));
        } else {
          buf = tf.add(tf.mul(existing, momentum), g);
          existing.assign(buf);
        }
        g = nesterov ? tf.add(g, tf.mul(buf, momentum)) : buf;
      }
      p.assign(tf.sub(p, tf.mul(g, lr)));
    }
    this.steps += 1;
  }
}

export class AdamW extends BaseOptimizer implements Optimizer {
  readonly type = 'adamw' as const;
  constructor(private readonly cfg: Omit<AdamWSpec, 'type' | 'lr'>) {
    super();
  }

  apply(params: ReadonlyArray<{ name: string; variable: tf.Variable; grad: tf.Tensor }>, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.cfg;
    const t = this.steps + 1;
    const bc1 = 1 - beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    for (const { name, variable: p, grad } of params) {
      const m = this.slot(`${name}.exp_avg`, () => tf.zerosLike(p));
      const v = this.slot(`${name}.exp_avg_sq`, () => tf.zerosLike(p));
      const decayed = weightDecay !== 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
      const m1 = tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1));
      const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2));
      m.assign(m1);
      v.assign(v1);
      const denom = tf.add(tf.div(tf.sqrt(v1), bc2Sqrt), eps);
      p.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), lr / bc1)));
    }
    this.steps = t;
  }
}

export function createOptimizer(spec: JobSpec['optimizer']): Optimizer {
  if (spec.type === 'sgd') return new Sgd(spec);
  return new AdamW(spec);
}
