/**
 * The exact sign of a tensor: +1 where x > 0, −1 where x < 0, 0 where x = 0 (NaN stays NaN).
 *
 * `tf.sign` is not exact on every backend: tfjs-backend-wasm 4.22's Sign kernel returns 0 for
 * |x| below about 1e-7 (measured: sign(1e-7) = 0, sign(1.78e-7) = 1; the cpu backend gives 1).
 * PGD's and error-minimizing noise's input gradients of a batch-mean loss are that small: with
 * LeNet-5 at initialisation on a CIFAR-10 batch of 64 the largest is 3.4e-5, and 4.8 % of the
 * pixels have 0 < |g| < 1e-7, so `tf.sign` left them unmoved, step after step (PyTorch's
 * `torch.sign` moves them). `step(x) − step(−x)` is exact on every backend, and its three kernels
 * are native ones on the native engine (an earlier `greater`/`less`/`cast` form fell back to
 * tfjs-backend-cpu's broadcasting loops and took a third of an adversarial-training step).
 */
import * as tf from '@tensorflow/tfjs-core';

export function exactSign(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(tf.step(x), tf.step(tf.neg(x))));
}
