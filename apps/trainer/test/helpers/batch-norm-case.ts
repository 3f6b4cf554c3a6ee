/**
 * A train-mode batch norm (+ ReLU) case on the current backend, shared by the native and webgpu kernel tests: values,
 * running statistics and the gradients to x, weight and bias of a random NHWC input (channel c scaled by 1 + c and
 * shifted by c / 2 + `offset`, so the statistics are not trivial) under a random dy.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type BatchNormParams, batchNormTrain } from '../../src/model/batch-norm';
import { seeded } from './conv-cases';

export async function batchNormCase(shape: [number, number, number, number], relu: boolean, seed: number, offset = 0) {
  const c = shape[3];
  const size = shape.reduce((a, b) => a * b, 1);
  const xData = seeded(size, seed).map((v, i) => v * (1 + (i % c)) + (i % c) * 0.5 + offset);
  const p: BatchNormParams = {
    weight: tf.tensor1d(seeded(c, seed + 1).map((v) => v + 1.5)),
    bias: tf.tensor1d(seeded(c, seed + 2)),
    runningMean: tf.variable(tf.tensor1d(seeded(c, seed + 3))),
    runningVar: tf.variable(tf.tensor1d(seeded(c, seed + 4).map((v) => v + 2))),
  };
  const dy = tf.tensor4d(seeded(size, seed + 5), shape);
  const x = tf.tensor4d(xData, shape);
  const f = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
    tf.sum(
      tf.mul(batchNormTrain(xi as tf.Tensor4D, { ...p, weight: g as tf.Tensor1D, bias: b as tf.Tensor1D }, relu), dy),
    );
  const y = batchNormTrain(x, p, relu);
  const grads = tf.grads(f)([x, p.weight, p.bias]);
  const out = {
    y: await y.data(),
    dx: await grads[0]!.data(),
    dgamma: await grads[1]!.data(),
    dbeta: await grads[2]!.data(),
    runningMean: await p.runningMean.data(),
    runningVar: await p.runningVar.data(),
  };
  tf.dispose([x, y, dy, p.weight, p.bias, p.runningMean, p.runningVar, ...grads]);
  return out;
}
