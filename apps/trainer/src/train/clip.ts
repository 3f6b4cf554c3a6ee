/** Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_(params, maxNorm) (L2, eps 1e-6). */
import * as tf from '@tensorflow/tfjs-core';

/** The global L2 norm of all gradients. */
export function globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

/**
 * Scales every gradient by min(1, maxNorm / (total + 1e-6)) when the global norm exceeds maxNorm. Stays on the
 * device (no read-back). Returns the scaled gradients and the norm before clipping.
 */
export function clipByGlobalNorm(
  grads: readonly tf.Tensor[],
  maxNorm: number,
): { grads: tf.Tensor[]; norm: tf.Scalar } {
  const norm = globalNorm(grads);
  const coef = tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1);
  return { grads: grads.map((g) => tf.mul(g, coef)), norm };
}
