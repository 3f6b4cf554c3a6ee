/**
 * Batch normalisation with PyTorch's semantics (eps 1e-5, momentum 0.1) over NHWC activations.
 *
 * Train mode normalises with the batch mean and the *biased* batch variance and updates the running statistics as
 * `running = (1 - momentum) * running + momentum * batch`, using the *unbiased* batch variance for `running_var`.
 * Eval mode normalises with the running statistics (one fused kernel).
 *
 * The train-mode op has a closed-form gradient (tf.customGrad) instead of TF.js's composed FusedBatchNorm gradient
 * plus the gradient of tf.moments: about a third of the full-size tensor operations in the backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BN_RUNNING_KERNEL, BN_TRAIN_GRAD_KERNEL, BN_TRAIN_KERNEL } from '../backends/native-kernels';
import { BN_TRAIN_RUNNING_KERNEL } from '../backends/webgpu-kernels';

export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

export interface BatchNormParams {
  weight: tf.Tensor1D;
  bias: tf.Tensor1D;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
}

export function batchNormEval(x: tf.Tensor4D, p: BatchNormParams): tf.Tensor4D {
  return tf.batchNorm4d(x, p.runningMean as tf.Tensor1D, p.runningVar as tf.Tensor1D, p.bias, p.weight, BN_EPS);
}

/** Column sums of a [M, C] view of x (reduction over N, H, W), as a GEMV, which avoids a full transpose. */
function channelSum(x: tf.Tensor4D): tf.Tensor1D {
  const c = x.shape[3];
  const m = x.size / c;
  return tf.reshape(tf.matMul(tf.ones([1, m]), tf.reshape(x, [m, c])), [c]);
}

/**
 * Train-mode batch norm (+ `residual`) (+ ReLU): relu?(bn(x) + residual). Returns the activations and updates
 * `runningMean` / `runningVar` in place. Gradients flow to x, weight, bias and the residual (the batch statistics are
 * differentiated exactly, as in PyTorch).
 */
export function batchNormTrain(x: tf.Tensor4D, p: BatchNormParams, relu = false, residual?: tf.Tensor4D): tf.Tensor4D {
  const c = x.shape[3];
  const n = x.size / c;
  if (n < 2) throw new Error(`batch norm in train mode needs more than one value per channel, got ${n}`);
  const backend = tf.getBackend();
  // One kernel for everything (webgpu-kernels.ts): statistics, running statistics, normalisation, residual, ReLU.
  if (tf.getKernel(BN_TRAIN_RUNNING_KERNEL, backend) && (relu || !residual))
    return runningBatchNormTrain(x, p, relu, n, residual);
  const fused = Boolean(tf.getKernel(BN_TRAIN_KERNEL, backend));
  // The ReLU goes into the batch norm's kernel when nothing is added before it.
  const inner = fused && relu && !residual;
  let y = fused ? fusedBatchNormTrain(x, p, inner, n) : composedBatchNormTrain(x, p, n);
  if (residual) y = tf.add(y, residual) as tf.Tensor4D;
  return relu && !inner ? (tf.relu(y) as tf.Tensor4D) : y;
}

function updateRunning(p: BatchNormParams, mean: tf.Tensor1D, variance: tf.Tensor1D, n: number): void {
  if (tf.getKernel(BN_RUNNING_KERNEL, tf.getBackend())) {
    // One dispatch per statistic instead of three ops and two scalar uploads (the same float operations).
    const update = (running: tf.Variable, stat: tf.Tensor1D, take: number) =>
      running.assign(
        tf.engine().runKernel(
          BN_RUNNING_KERNEL,
          { running, stat } as tf.NamedTensorMap,
          {
            keep: 1 - BN_MOMENTUM,
            take,
          } as never,
        ) as tf.Tensor,
      );
    update(p.runningMean, mean, BN_MOMENTUM);
    update(p.runningVar, variance, (BN_MOMENTUM * n) / (n - 1));
    return;
  }
  p.runningMean.assign(tf.add(tf.mul(p.runningMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
  p.runningVar.assign(tf.add(tf.mul(p.runningVar, 1 - BN_MOMENTUM), tf.mul(variance, (BN_MOMENTUM * n) / (n - 1))));
}

/**
 * The same op as one forward and one backward kernel of the backend (native-kernels.ts), ReLU fused when asked: the
 * statistics, normalisation and its exact gradient in two passes over the activations instead of ~20 tensor ops.
 */
function fusedBatchNormTrain(x: tf.Tensor4D, p: BatchNormParams, relu: boolean, n: number): tf.Tensor4D {
  const op = tf.customGrad((xIn, gammaIn, betaIn, save) => {
    const [y, mean, invStd, variance] = tf
      .engine()
      .runKernel(
        BN_TRAIN_KERNEL,
        { x: xIn, gamma: gammaIn, beta: betaIn } as tf.NamedTensorMap,
        { relu } as never,
      ) as tf.Tensor[];
    updateRunning(p, mean as tf.Tensor1D, variance as tf.Tensor1D, n);
    (save as (t: tf.Tensor[]) => void)([xIn as tf.Tensor, y!, mean!, invStd!, gammaIn as tf.Tensor1D]);
    return {
      value: y as tf.Tensor4D,
      gradFunc: fusedGrad({ relu, residual: false }),
    };
  });
  return op(x, p.weight, p.bias) as tf.Tensor4D;
}

/** The backward of the fused train-mode ops: BN_TRAIN_GRAD_KERNEL on what their forward saved (x, y, mean, invStd, gamma). */
function fusedGrad(attrs: { relu: boolean; residual: boolean }) {
  return (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [xs, ys, m, inv, g] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    return tf
      .engine()
      .runKernel(
        BN_TRAIN_GRAD_KERNEL,
        { dy, x: xs, y: ys, mean: m, invStd: inv, gamma: g } as tf.NamedTensorMap,
        attrs as never,
      ) as tf.Tensor[];
  };
}

/**
 * BN_TRAIN_RUNNING_KERNEL's op (webgpu): three dispatches forward (the running statistics' update included), three
 * backward; with a residual (under ReLU) its gradient is the masked dy the backward kernel writes besides dx.
 */
function runningBatchNormTrain(
  x: tf.Tensor4D,
  p: BatchNormParams,
  relu: boolean,
  n: number,
  residual?: tf.Tensor4D,
): tf.Tensor4D {
  const attrs = { relu, keep: 1 - BN_MOMENTUM, takeMean: BN_MOMENTUM, takeVar: (BN_MOMENTUM * n) / (n - 1) };
  const forward = (xIn: tf.Tensor, gammaIn: tf.Tensor, betaIn: tf.Tensor, res: tf.Tensor | null, save: unknown) => {
    const inputs: tf.NamedTensorMap = {
      x: xIn,
      gamma: gammaIn,
      beta: betaIn,
      runningMean: p.runningMean,
      runningVar: p.runningVar,
      ...(res ? { residual: res } : {}),
    };
    const [y, mean, invStd, newMean, newVar] = tf
      .engine()
      .runKernel(BN_TRAIN_RUNNING_KERNEL, inputs, attrs as never) as tf.Tensor[];
    p.runningMean.assign(newMean!);
    p.runningVar.assign(newVar!);
    (save as (t: tf.Tensor[]) => void)([xIn, y!, mean!, invStd!, gammaIn]);
    return {
      value: y as tf.Tensor4D,
      gradFunc: fusedGrad({ relu, residual: Boolean(res) }),
    };
  };
  if (residual) {
    const op = tf.customGrad((xIn, gammaIn, betaIn, res, save) =>
      forward(xIn as tf.Tensor, gammaIn as tf.Tensor, betaIn as tf.Tensor, res as tf.Tensor, save),
    );
    return op(x, p.weight, p.bias, residual) as tf.Tensor4D;
  }
  const op = tf.customGrad((xIn, gammaIn, betaIn, save) =>
    forward(xIn as tf.Tensor, gammaIn as tf.Tensor, betaIn as tf.Tensor, null, save),
  );
  return op(x, p.weight, p.bias) as tf.Tensor4D;
}

function composedBatchNormTrain(x: tf.Tensor4D, p: BatchNormParams, n: number): tf.Tensor4D {
  const op = tf.customGrad((xIn, gammaIn, betaIn, save) => {
    const x4 = xIn as tf.Tensor4D;
    const gamma = gammaIn as tf.Tensor1D;
    const mean = tf.div(channelSum(x4), n) as tf.Tensor1D;
    const centered = tf.sub(x4, mean) as tf.Tensor4D;
    const variance = tf.div(channelSum(tf.square(centered) as tf.Tensor4D), n) as tf.Tensor1D;
    const invStd = tf.rsqrt(tf.add(variance, BN_EPS)) as tf.Tensor1D;
    const xhat = tf.mul(centered, invStd) as tf.Tensor4D;
    // Ops inside a custom op's forward are not taped: the running-statistics update is invisible to autodiff.
    updateRunning(p, mean, variance, n);
    (save as (t: tf.Tensor[]) => void)([xhat, invStd, gamma]);
    return {
      value: tf.add(tf.mul(xhat, gamma), betaIn as tf.Tensor1D) as tf.Tensor4D,
      gradFunc: (dyIn: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, g] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
        const dy = dyIn as tf.Tensor4D;
        const dbeta = channelSum(dy);
        const dgamma = channelSum(tf.mul(dy, xh) as tf.Tensor4D);
        // dx = gamma * invStd * (dy - mean(dy) - xhat * mean(dy * xhat))
        const dx = tf.mul(tf.sub(tf.sub(dy, tf.mul(xh, tf.div(dgamma, n))), tf.div(dbeta, n)), tf.mul(g, inv));
        return [dx, dgamma, dbeta];
      },
    };
  });
  return op(x, p.weight, p.bias) as tf.Tensor4D;
}
