/**
 * One batch of sample-wise error-minimizing steps: PGD that *descends* the surrogate's
 * cross-entropy on the true labels, from the images' current noise, in inference mode. Shared by
 * the main thread and the worker threads of ./pool.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { pgd } from '../nn/pgd.js';
import { Rng } from '../nn/rng.js';
import { crossEntropy } from '../nn/loss.js';

export interface DescendParams {
  epsilon: number;
  stepSize: number;
  steps: number;
  /** Largest number of images run at once (the wasm heap); default all. */
  maxBatch?: number;
}

/**
 * New noise for m images: `clean` bytes (m·H·W·C), `start` the perturbed images (clean/255 + δ,
 * in [0, 1]), `labels` their classes. Returns δ' = adv − clean/255 (a fresh array).
 */
export async function descendBatch(
  model: LayersModel,
  clean: Uint8Array,
  start: Float32Array,
  labels: Int32Array,
  shape: [number, number, number, number],
  classes: number,
  p: DescendParams,
): Promise<Float32Array> {
  const [n, h, w, ch] = shape;
  const per = h * w * ch;
  const chunk = Math.max(1, Math.min(n, p.maxBatch ?? n));
  const out = new Float32Array(n * per);
  for (let a = 0; a < n; a += chunk) {
    const m = Math.min(chunk, n - a);
    const part = tf.tidy(() => {
      const dims: [number, number, number, number] = [m, h, w, ch];
      const x = tf.div(
        tf.tensor4d(clean.subarray(a * per, (a + m) * per), dims, 'float32'),
        255,
      ) as tf.Tensor4D;
      const y = tf.oneHot(tf.tensor1d(labels.subarray(a, a + m), 'int32'), classes);
      const adv = pgd(
        (xa) => crossEntropy(model.apply(xa, { training: false }) as tf.Tensor, y),
        x,
        {
          epsilon: p.epsilon,
          step: p.stepSize,
          steps: p.steps,
          start: tf.tensor4d(start.subarray(a * per, (a + m) * per), dims),
          descend: true,
          rng: new Rng(0),
        },
      );
      return tf.sub(adv, x);
    });
    // Read asynchronously: a GPU engine (webgpu) cannot read synchronously in Node.
    out.set((await part.data()) as Float32Array, a * per);
    part.dispose();
  }
  return out;
}
