/**
 * Robust accuracy: does an adversarially trained model resist the attack it was trained against?
 * PGD-20 (Madry et al. 2018; ε = 8/255, step 2/255, a uniform random start, the model in eval
 * mode, cross-entropy on the true labels) on the first `n` clean test images; an image counts when
 * the attacked copy is still classified correctly. A model with none (about 0 %) was not
 * adversarially trained in any useful sense, whatever its clean accuracy.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type Dataset, unitImages } from '../data/dataset.js';
import { crossEntropy } from '../nn/loss.js';
import { pgd } from '../nn/pgd.js';
import { Rng } from '../nn/rng.js';
import { yieldToEvents } from '../nn/yield.js';

/** The evaluation attack (the OPS paper's training attack, with 20 steps). */
export const ROBUST_ATTACK = { epsilon: 8 / 255, step: 2 / 255, steps: 20, images: 1000 } as const;

/** The fraction of the first `n` test images still classified correctly under PGD-20. */
export async function robustAccuracy(
  model: LayersModel,
  test: Dataset,
  seed: number,
  n: number = ROBUST_ATTACK.images,
  batch = 250,
  stop: () => boolean = () => false,
): Promise<number | null> {
  const m = Math.min(n, test.labels.length);
  const classes = test.classNames.length;
  const rng = new Rng(seed * 1_000_003 + 424_242);
  let correct = 0;
  for (let s = 0; s < m; s += batch) {
    await yieldToEvents();
    if (stop()) return null;
    const k = Math.min(batch, m - s);
    const x = unitImages(test, s, k);
    const labels = test.labels.subarray(s, s + k);
    const predicted = tf.tidy(() => {
      const input = tf.tensor4d(x, [k, test.height, test.width, test.channels]);
      const targets = tf.cast(
        tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), classes),
        'float32',
      );
      const adv = pgd(
        (xa) => crossEntropy(model.apply(xa, { training: false }) as tf.Tensor, targets),
        input,
        {
          epsilon: ROBUST_ATTACK.epsilon,
          step: ROBUST_ATTACK.step,
          steps: ROBUST_ATTACK.steps,
          rng,
        },
      );
      return tf.argMax(model.apply(adv, { training: false }) as tf.Tensor, -1);
    });
    const pred = await predicted.data();
    predicted.dispose();
    for (let i = 0; i < k; i++) if (pred[i] === labels[i]) correct++;
  }
  return correct / m;
}

/** The record fields of a robust evaluation (EpochRecord.robustAccuracy …), or null when stopped. */
export async function robustRecord(
  model: LayersModel,
  test: Dataset,
  seed: number,
  stop: () => boolean,
): Promise<{ robustAccuracy: number; robustImages: number; robustSeconds: number } | null> {
  const t0 = performance.now();
  const r = await robustAccuracy(model, test, seed, ROBUST_ATTACK.images, 250, stop);
  if (r === null) return null;
  return {
    robustAccuracy: r,
    robustImages: Math.min(ROBUST_ATTACK.images, test.labels.length),
    robustSeconds: (performance.now() - t0) / 1000,
  };
}
