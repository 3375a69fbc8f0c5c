/**
 * GELU, the exact form x·Φ(x) = x·(1 + erf(x/√2))/2 (PyTorch's `F.gelu` default). On the native
 * backend one native kernel each way (backends/native/gelu.ts); elsewhere tfjs' erf, which tfjs
 * differentiates itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NATIVE } from './backends/native/backend.js';
import { nativeGelu } from './backends/native/gelu.js';

export function gelu(x: tf.Tensor): tf.Tensor {
  if (tf.getBackend() === NATIVE && x.dtype === 'float32') return nativeGelu(x);
  return tf.tidy(() => tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2))))));
}
