/**
 * L∞ projected gradient descent (Madry et al. 2018) with a random start, for adversarial training
 * (the OPS paper's protocol: PGD-10, ε = 8/255, step 2/255). Starting from x + U(−ε, ε) clipped to
 * [0, 1], each step ascends the loss along the sign of its input gradient and projects back onto
 * [x − ε, x + ε] ∩ [0, 1]. The sign is exact (./sign.ts): tfjs's wasm `tf.sign` flushes |g| < 1e-7
 * to 0, which left about 5 % of the pixels unmoved.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradient functions; tfjs-layers' bundle registers all of them.
import '@tensorflow/tfjs-layers';
import type { Rng } from './rng.js';
import { exactSign } from './sign.js';

export interface PgdOptions {
  /** L∞ radius. Default 8/255. */
  epsilon?: number;
  /** Step size. Default 2/255. */
  step?: number;
  /** Number of steps. Default 10. */
  steps?: number;
  /** Draws the random start (seeded, so an attack is reproducible). */
  rng: Rng;
  /** Start from a uniform point of the ε-ball (default true) or from x itself. */
  randomStart?: boolean;
  /**
   * Radius of the uniform random start (default ε). N-FGSM (de Jorge et al. 2022) starts from
   * U(−2ε, 2ε).
   */
  noise?: number;
  /**
   * Keep every iterate inside the ε-ball around x (default true, PGD). false: only inside [0, 1],
   * as N-FGSM, whose noise and step together may leave the ball.
   */
  project?: boolean;
  /** Start from this point instead (inside the ball; not disposed). Overrides randomStart. */
  start?: tf.Tensor4D;
  /**
   * Descend the loss instead of ascending it: error-*minimizing* noise (Huang et al. 2021) uses
   * the same projected sign steps with the opposite sign. Default false (an attack).
   */
  descend?: boolean;
}

/** The paper's PGD settings. */
export const PGD_DEFAULTS = { epsilon: 8 / 255, step: 2 / 255, steps: 10 } as const;

/**
 * An adversarial version of `x` (a new tensor the caller disposes): maximises (or, with `descend`,
 * minimises) `lossOf` within the
 * L∞ ball of radius ε around x, intersected with [0, 1]. `lossOf` maps a batch to a scalar loss
 * (e.g. the mean cross-entropy of the model on the true labels); only its gradient with respect to
 * the input is taken, the model's variables are not touched. Which mode the model runs in
 * (batch-norm statistics frozen or not) is the caller's choice inside `lossOf`; Madry-style
 * reference code attacks in eval mode. `x` is not disposed.
 */
export function pgd(
  lossOf: (x: tf.Tensor4D) => tf.Scalar,
  x: tf.Tensor4D,
  opts: PgdOptions,
): tf.Tensor4D {
  const epsilon = opts.epsilon ?? PGD_DEFAULTS.epsilon;
  const step = opts.step ?? PGD_DEFAULTS.step;
  const steps = opts.steps ?? PGD_DEFAULTS.steps;
  if (!(epsilon >= 0)) throw new RangeError(`pgd: epsilon ${epsilon} must be ≥ 0`);
  if (!(step >= 0)) throw new RangeError(`pgd: step ${step} must be ≥ 0`);
  if (!Number.isInteger(steps) || steps < 0)
    throw new RangeError(`pgd: steps ${steps} must be a non-negative integer`);

  const noise = opts.noise ?? epsilon;
  if (!(noise >= 0)) throw new RangeError(`pgd: noise ${noise} must be ≥ 0`);
  const project = opts.project ?? true;
  const lower = tf.tidy(() => (project ? tf.maximum(tf.sub(x, epsilon), 0) : tf.zerosLike(x)));
  const upper = tf.tidy(() => (project ? tf.minimum(tf.add(x, epsilon), 1) : tf.onesLike(x)));
  const grad = tf.grad((input: tf.Tensor) => lossOf(input as tf.Tensor4D));
  const signedStep = opts.descend === true ? -step : step;
  try {
    let adv: tf.Tensor4D = tf.tidy(() => {
      if (opts.start !== undefined) return tf.minimum(tf.maximum(opts.start, lower), upper);
      if (opts.randomStart === false) return tf.clone(x);
      const size = x.size;
      const delta = new Float32Array(size);
      for (let i = 0; i < size; i++) delta[i] = (2 * opts.rng.uniform() - 1) * noise;
      return tf.minimum(tf.maximum(tf.add(x, tf.tensor(delta, x.shape, 'float32')), lower), upper);
    });
    for (let k = 0; k < steps; k++) {
      const next = tf.tidy(() => {
        const g = grad(adv);
        const moved = tf.add(adv, tf.mul(exactSign(g), signedStep));
        return tf.minimum(tf.maximum(moved, lower), upper) as tf.Tensor4D;
      });
      adv.dispose();
      adv = next;
    }
    return adv;
  } finally {
    lower.dispose();
    upper.dispose();
  }
}
