/**
 * Class-wise error-minimizing noise: one δ per class (K×H×W×C), moved by sign steps that descend
 * the surrogate's loss summed over the images of each class in a batch; per-image noise follows
 * from it. The cheaper variant of ./em.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type Dataset, imageSize } from '../data/dataset.js';
import { crossEntropy } from '../nn/loss.js';
import { exactSign } from '../nn/sign.js';
import type { EmConfig } from './em-config.js';

/**
 * Class-wise: `steps` sign steps on the class noises, each descending the batch's loss summed over
 * the images of that class (δ kept in the ε-ball; images clipped to [0, 1]).
 */
export async function classStep(
  model: LayersModel,
  train: Dataset,
  noise: Float32Array,
  from: number,
  m: number,
  c: EmConfig,
): Promise<void> {
  const size = imageSize(train);
  const classes = train.classNames.length;
  const shape: [number, number, number, number] = [m, train.height, train.width, train.channels];
  const labels = Int32Array.from(train.labels.subarray(from, from + m));
  const next = tf.tidy(() => {
    const clean = tf.div(
      tf.tensor4d(train.images.subarray(from * size, (from + m) * size), shape, 'float32'),
      255,
    );
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
    const lossOf = (d: tf.Tensor) => {
      const per = tf.reshape(tf.matMul(y, d), shape);
      const x = tf.clipByValue(tf.add(clean, per), 0, 1);
      return crossEntropy(model.apply(x, { training: false }) as tf.Tensor, y);
    };
    const grad = tf.grad(lossOf);
    let d: tf.Tensor = tf.tensor2d(noise, [classes, size]);
    for (let s = 0; s < c.steps; s++) {
      const g = grad(d);
      d = tf.clipByValue(tf.sub(d, tf.mul(exactSign(g), c.stepSize)), -c.epsilon, c.epsilon);
    }
    return d;
  });
  noise.set((await next.data()) as Float32Array);
  next.dispose();
}

/** Per-image noise from class noises: clean/255 + δ[label], clipped to [0, 1], minus clean/255. */
export function expandClassNoise(train: Dataset, classNoise: Float32Array): Float32Array {
  const size = imageSize(train);
  const out = new Float32Array(train.images.length);
  for (let i = 0; i < train.labels.length; i++) {
    const nz = train.labels[i] * size;
    for (let j = 0; j < size; j++) {
      const x = train.images[i * size + j] / 255;
      const v = Math.min(Math.max(x + classNoise[nz + j], 0), 1);
      out[i * size + j] = v - x;
    }
  }
  return out;
}
