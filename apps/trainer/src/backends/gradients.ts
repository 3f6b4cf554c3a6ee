/**
 * Gradients of the kernels a ResNet training step differentiates through.
 *
 * TF.js ships its gradient registrations only as ES modules (`@tensorflow/tfjs-core/dist/register_all_gradients`),
 * which CommonJS consumers (jest with this repository's config, compiled CJS builds) cannot load; its CJS bundle
 * has none. So the trainer registers the few it needs, written with public ops and kernels: Conv2D, MaxPool, Relu,
 * Add, Sub, Multiply, RealDiv, Neg, Sum, Mean, BatchMatMul, Reshape, Cast. (Batch norm in train mode and log-softmax are
 * custom ops with their own gradients.) A kernel that already has a gradient (e.g. registered by @tensorflow/tfjs)
 * keeps it.
 */

import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';

type Grads = Record<string, () => tf.Tensor>;

/** Sums `dy` over the axes that broadcasting expanded, back to `shape`. */
function unbroadcast(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, dy.shape);
  const reduced = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(reduced, shape);
}

/** float32 as is (a same-dtype Cast would copy the whole tensor), anything else cast. */
function asFloat(t: tf.Tensor): tf.Tensor {
  return t.dtype === 'float32' ? t : tf.cast(t, 'float32');
}

function runKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: NamedAttrMap): tf.Tensor {
  return tf.engine().runKernel(name, inputs as never, attrs) as tf.Tensor;
}

/** dy reshaped to x's rank with the reduced axes kept as 1, broadcast over x. */
function expandReduced(dy: tf.Tensor, x: tf.Tensor, axisAttr: unknown): tf.Tensor {
  const axes = tf.util.parseAxisParam(axisAttr as number | number[], x.shape);
  const shape = x.shape.slice();
  for (const a of axes) shape[a] = 1;
  return tf.mul(tf.reshape(dy, shape), tf.ones(x.shape));
}

function reducedSize(x: tf.Tensor, axisAttr: unknown): number {
  const axes = tf.util.parseAxisParam(axisAttr as number | number[], x.shape);
  return axes.reduce((n, a) => n * x.shape[a]!, 1);
}

export const TRAINING_GRADIENTS: GradConfig[] = [
  {
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs): Grads => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs;
      const d = typeof dilations === 'number' ? [dilations, dilations] : (dilations as number[] | undefined);
      if (d && (d[0] !== 1 || d[1] !== 1)) throw new Error('Conv2D gradient supports dilation 1 only');
      const common = { strides, pad, dataFormat, dimRoundingMode } as NamedAttrMap;
      return {
        x: () => runKernel('Conv2DBackpropInput', { dy: dy as tf.Tensor, filter }, { ...common, inputShape: x.shape }),
        filter: () =>
          runKernel('Conv2DBackpropFilter', { x, dy: dy as tf.Tensor }, { ...common, filterShape: filter.shape }),
      };
    },
  },
  {
    kernelName: 'MaxPool',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs): Grads => {
      const [x, y] = saved as [tf.Tensor, tf.Tensor];
      const { filterSize, strides, pad, dimRoundingMode } = attrs;
      const poolAttrs = { filterSize, strides, pad, dimRoundingMode } as NamedAttrMap;
      return { x: () => runKernel('MaxPoolGrad', { dy: dy as tf.Tensor, input: x, output: y }, poolAttrs) };
    },
  },
  { kernelName: 'Cast', gradFunc: (dy): Grads => ({ x: () => tf.clone(dy as tf.Tensor) }) },
  {
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved): Grads => ({ x: () => tf.mul(dy as tf.Tensor, tf.step(asFloat(saved[0]!))) }),
  },
  {
    kernelName: 'Add',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved): Grads => ({
      a: () => unbroadcast(dy as tf.Tensor, saved[0]!.shape),
      b: () => unbroadcast(dy as tf.Tensor, saved[1]!.shape),
    }),
  },
  {
    kernelName: 'Sub',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved): Grads => ({
      a: () => unbroadcast(dy as tf.Tensor, saved[0]!.shape),
      b: () => tf.neg(unbroadcast(dy as tf.Tensor, saved[1]!.shape)),
    }),
  },
  {
    kernelName: 'Multiply',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved): Grads => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      return {
        a: () => unbroadcast(tf.mul(dy as tf.Tensor, asFloat(b)), a.shape),
        b: () => unbroadcast(tf.mul(dy as tf.Tensor, asFloat(a)), b.shape),
      };
    },
  },
  {
    kernelName: 'RealDiv',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved): Grads => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      return {
        a: () => unbroadcast(tf.div(dy as tf.Tensor, b), a.shape),
        b: () => unbroadcast(tf.neg(tf.div(tf.mul(dy as tf.Tensor, a), tf.square(b))), b.shape),
      };
    },
  },
  { kernelName: 'Neg', gradFunc: (dy): Grads => ({ x: () => tf.neg(dy as tf.Tensor) }) },
  {
    kernelName: 'Reshape',
    inputsToSave: ['x'],
    gradFunc: (dy, saved): Grads => ({ x: () => tf.reshape(dy as tf.Tensor, saved[0]!.shape) }),
  },
  {
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs): Grads => ({ x: () => expandReduced(dy as tf.Tensor, saved[0]!, attrs['axis']) }),
  },
  {
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs): Grads => ({
      x: () => tf.div(expandReduced(dy as tf.Tensor, saved[0]!, attrs['axis']), reducedSize(saved[0]!, attrs['axis'])),
    }),
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs): Grads => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      const g = dy as tf.Tensor;
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      if (!transposeA && !transposeB)
        return { a: () => tf.matMul(g, b, false, true), b: () => tf.matMul(a, g, true, false) };
      if (!transposeA && transposeB)
        return { a: () => tf.matMul(g, b, false, false), b: () => tf.matMul(g, a, true, false) };
      if (transposeA && !transposeB)
        return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g, false, false) };
      return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
    },
  },
];

/** Registers the gradients above for kernels that have none yet. Idempotent. */
export function registerTrainingGradients(): void {
  for (const g of TRAINING_GRADIENTS) if (!tf.getGradient(g.kernelName)) tf.registerGradient(g);
}
