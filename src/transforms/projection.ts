/**
 * Orthogonal projection (Sandoval-Segura et al. 2022, "Autoregressive perturbations…" /
 * "Poisons that are learned faster are more effective"): a linear model learns a class-wise
 * shortcut first, so the directions its weights point in carry the shortcut. Fit a bias-free
 * linear softmax classifier on the training images, orthonormalise its K weight vectors, and
 * remove those K directions from every training image:
 *
 *   x ↦ x − Q Qᵀ x,  Q = the D×K orthonormal basis of the weights (modified Gram–Schmidt),
 *
 * with x the image as D = H·W·C values v/255 in [0, 1]. The result is brought back to uint8 as
 * clamp(⌊255·x′ + ½⌋, 0, 255). The test set is not projected.
 *
 * The fit: W (K×D, zeros at the start) minimises the mean softmax cross-entropy of the logits
 * W·x by Adam (β1 0.9, β2 0.999, ε 1e-8, bias-corrected) on minibatches taken in the dataset's
 * order, all in float64; deterministic, and replayed by the test in numpy.
 */
import { breathe } from './cooperate.js';
import type { Geometry } from './pil.js';

export interface LinearFitOptions {
  /** Passes over the data. Default 4. */
  epochs?: number;
  /** Minibatch size. Default 256. */
  batchSize?: number;
  /** Adam's learning rate. Default 1e-3. */
  lr?: number;
  /** Called after each epoch with the epoch's mean loss and training accuracy. */
  onEpoch?: (epoch: number, loss: number, accuracy: number) => void;
  /** Asked every few minibatches (the event loop runs in between); true stops with Stopped. */
  shouldStop?: () => boolean;
}

const UNIT = Float64Array.from({ length: 256 }, (_, v) => v / 255);

/** Σ a[i + d]·b[j + d] over d < n, in four interleaved partial sums (to break the add chain). */
function dot(a: Float64Array, i: number, b: Float64Array, j: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (; d + 3 < n; d += 4) {
    s0 += a[i + d] * b[j + d];
    s1 += a[i + d + 1] * b[j + d + 1];
    s2 += a[i + d + 2] * b[j + d + 2];
    s3 += a[i + d + 3] * b[j + d + 3];
  }
  for (; d < n; d++) s0 += a[i + d] * b[j + d];
  return s0 + s1 + (s2 + s3);
}

/** Fits the bias-free linear softmax classifier; returns W as K rows of D = H·W·C weights. */
export async function fitLinear(
  images: Uint8Array,
  labels: ArrayLike<number>,
  g: Geometry,
  classes: number,
  opts: LinearFitOptions = {},
): Promise<Float64Array> {
  const D = g.height * g.width * g.channels;
  const K = classes;
  const n = labels.length;
  const epochs = opts.epochs ?? 4;
  const bs = opts.batchSize ?? 256;
  const lr = opts.lr ?? 1e-3;
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const W = new Float64Array(K * D);
  const m = new Float64Array(K * D);
  const v = new Float64Array(K * D);
  const grad = new Float64Array(K * D);
  const x = new Float64Array(bs * D);
  const p = new Float64Array(bs * K);
  let t = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    let loss = 0;
    let correct = 0;
    for (let start = 0; start < n; start += bs) {
      if (t % 8 === 7) await breathe(opts.shouldStop);
      const b = Math.min(bs, n - start);
      for (let k = 0; k < b * D; k++) x[k] = UNIT[images[start * D + k]];
      // Softmax probabilities minus the one-hot target, divided by the batch size.
      for (let i = 0; i < b; i++) {
        const xi = i * D;
        let max = -Infinity;
        let arg = 0;
        for (let c = 0; c < K; c++) {
          const s = dot(W, c * D, x, xi, D);
          p[i * K + c] = s;
          if (s > max) [max, arg] = [s, c];
        }
        let z = 0;
        for (let c = 0; c < K; c++) z += p[i * K + c] = Math.exp(p[i * K + c] - max);
        const y = labels[start + i];
        loss -= Math.log(p[i * K + y] / z);
        if (arg === y) correct++;
        for (let c = 0; c < K; c++) p[i * K + c] = (p[i * K + c] / z - (c === y ? 1 : 0)) / b;
      }
      grad.fill(0);
      for (let i = 0; i < b; i++)
        for (let c = 0; c < K; c++) {
          const e = p[i * K + c];
          const wc = c * D;
          const xi = i * D;
          for (let d = 0; d < D; d++) grad[wc + d] += e * x[xi + d];
        }
      t++;
      const c1 = 1 - b1 ** t;
      const c2 = 1 - b2 ** t;
      for (let k = 0; k < K * D; k++) {
        m[k] = b1 * m[k] + (1 - b1) * grad[k];
        v[k] = b2 * v[k] + (1 - b2) * grad[k] * grad[k];
        W[k] -= (lr * (m[k] / c1)) / (Math.sqrt(v[k] / c2) + eps);
      }
    }
    opts.onEpoch?.(epoch, loss / n, correct / n);
  }
  return W;
}

/**
 * An orthonormal basis of the span of the K rows of `w` (each of length D), by modified
 * Gram–Schmidt in the rows' order; a row left with norm ≤ 1e-10 × its original norm (dependent
 * on the earlier ones) is dropped. Returns the basis as rows.
 */
export function orthonormalRows(w: Float64Array, K: number): Float64Array[] {
  const D = w.length / K;
  const q: Float64Array[] = [];
  for (let c = 0; c < K; c++) {
    const r = w.slice(c * D, (c + 1) * D);
    const norm0 = Math.hypot(...r);
    for (const b of q) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += b[d] * r[d];
      for (let d = 0; d < D; d++) r[d] -= dot * b[d];
    }
    let norm = 0;
    for (let d = 0; d < D; d++) norm += r[d] * r[d];
    norm = Math.sqrt(norm);
    if (!(norm > 1e-10 * norm0)) continue;
    for (let d = 0; d < D; d++) r[d] /= norm;
    q.push(r);
  }
  return q;
}

/**
 * dst = clamp(⌊255·(x − QQᵀx) + ½⌋, 0, 255) for each image x = src/255 (count images); asks
 * `shouldStop` every 1,000 images.
 */
export async function projectOut(
  src: Uint8Array,
  dst: Uint8Array,
  basis: Float64Array[],
  count: number,
  shouldStop?: () => boolean,
): Promise<void> {
  const D = src.length / count;
  const x = new Float64Array(D);
  for (let i = 0; i < count; i++) {
    if (i % 1000 === 999) await breathe(shouldStop);
    const o = i * D;
    for (let d = 0; d < D; d++) x[d] = UNIT[src[o + d]];
    const coef = basis.map((b) => dot(b, 0, x, 0, D));
    for (let j = 0; j < basis.length; j++) {
      const b = basis[j];
      const c = coef[j];
      for (let d = 0; d < D; d++) x[d] -= c * b[d];
    }
    for (let d = 0; d < D; d++) {
      const v = Math.floor(255 * x[d] + 0.5);
      dst[o + d] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}
