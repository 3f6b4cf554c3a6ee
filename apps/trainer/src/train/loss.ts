/** Cross-entropy losses on logits, as torch.nn.CrossEntropyLoss computes them. */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Per-sample cross-entropy with label smoothing ε: (1−ε)·(−log p_y) + ε·mean_k(−log p_k), which is torch's
 * `label_smoothing` (targets (1−ε)·onehot + ε/K). ε = 0 is plain cross-entropy.
 */
export function perSampleCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing = 0): tf.Tensor1D {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const logp = tf.logSoftmax(logits);
    const nll = tf.neg(tf.sum(tf.mul(tf.cast(tf.oneHot(labels, k), 'float32'), logp), 1));
    if (smoothing === 0) return nll as tf.Tensor1D;
    const uniform = tf.neg(tf.mean(logp, 1));
    return tf.add(tf.mul(nll, 1 - smoothing), tf.mul(uniform, smoothing)) as tf.Tensor1D;
  });
}

/** Mean cross-entropy over the batch (reduction='mean'). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing = 0): tf.Scalar {
  return tf.tidy(() => tf.mean(perSampleCrossEntropy(logits, labels, smoothing)) as tf.Scalar);
}
