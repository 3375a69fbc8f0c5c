/** The training loss, shared by the train loop, PGD attacks and error-minimizing noise. */
import * as tf from '@tensorflow/tfjs-core';

/** Mean cross-entropy of logits against targets (one-hot or soft), over the batch. */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1))) as tf.Scalar;
}
