/**
 * airbench94 (K. Jordan, "94 % on CIFAR-10 in 3.29 seconds on a single GPU", arXiv 2404.00498;
 * KellerJordan/cifar10-airbench, legacy/airbench94.py), on inputs in [0, 1] like every model here:
 *
 *   normalise (CIFAR-10 mean / std) · whiten: conv 2×2 C→24 (bias, no padding) · GELU ·
 *   3 × group [conv 3×3 (no bias) · maxpool 2 · BatchNorm · GELU · conv 3×3 · BatchNorm · GELU]
 *   (widths 64, 256, 256) · maxpool 3 · flatten · linear 256→classes (no bias) · ×1/9
 *
 * - the whitening kernel is not trainable (the fast94 recipe sets it from the training images:
 *   {@link whiteningKernel}); its bias starts at 0 and is trained for the recipe's first epochs;
 * - BatchNorm: eps 1e-12, momentum 0.6 (on the old value, tfjs' convention: PyTorch's 0.4), scale
 *   fixed at 1 (a non-trainable γ), offset trained;
 * - 3×3 convs: PyTorch's default initialisation, then the first `in_channels` filters set to the
 *   identity (torch.nn.init.dirac_);
 * - the final 3×3 pool floors: at 32×32 it sees the top-left 3×3 of the 4×4 map, as the reference.
 *
 * Names are this project's (`group1.conv1`, `group1.norm1`…; bench/peer_airbench_torch.py uses the
 * same). Trainable parameters at CIFAR-10: 1,971,352 (the 24·3·2·2 whitening weights and the
 * BatchNorm scales are not trainable).
 */
import * as tfc from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-layers';
import { gelu } from '../gelu.js';
import {
  ap,
  conv,
  Init,
  modelInput,
  type BuildOptions,
  type InputShape,
  type Sym,
} from './layers.js';

export const AIRBENCH_MEAN = [0.4914, 0.4822, 0.4465];
export const AIRBENCH_STD = [0.247, 0.2435, 0.2616];
export const AIRBENCH_WIDTHS = [64, 256, 256] as const;
export const AIRBENCH_BN = { epsilon: 1e-12, momentum: 0.6 };
export const AIRBENCH_SCALE = 1 / 9;
/** Output channels of the whitening conv: 2 × 3 × 2² (the eigenvectors and their negatives). */
export const WHITEN_WIDTH = 24;

/** (x − mean) / std per channel (last axis); no weights. */
class Normalise extends tf.layers.Layer {
  static className = 'AirbenchNormalise';
  constructor(
    private readonly mean: number[],
    private readonly std: number[],
    name: string,
  ) {
    super({ name });
  }
  override call(inputs: tfc.Tensor | tfc.Tensor[]): tfc.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tfc.tidy(() => tfc.div(tfc.sub(x, this.mean), this.std));
  }
}

/** GELU (the exact, erf form) through {@link gelu}: a native kernel on the native backend. */
class Gelu extends tf.layers.Layer {
  static className = 'AirbenchGelu';
  override call(inputs: tfc.Tensor | tfc.Tensor[]): tfc.Tensor {
    return gelu(Array.isArray(inputs) ? inputs[0] : inputs);
  }
}

/** × a constant; no weights. */
class Scale extends tf.layers.Layer {
  static className = 'AirbenchScale';
  constructor(
    private readonly factor: number,
    name: string,
  ) {
    super({ name });
  }
  override call(inputs: tfc.Tensor | tfc.Tensor[]): tfc.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tfc.mul(x, this.factor);
  }
}

function norm(x: Sym, name: string): Sym {
  return ap(tf.layers.batchNormalization({ name, axis: -1, ...AIRBENCH_BN }), x);
}

const act = (x: Sym, name: string) => ap(new Gelu({ name }), x);

function group(x: Sym, name: string, width: number, init: Init, dirac: string[]): Sym {
  dirac.push(`${name}.conv1`, `${name}.conv2`);
  x = conv(x, `${name}.conv1`, width, 3, init);
  x = ap(tf.layers.maxPooling2d({ name: `${name}.pool`, poolSize: 2, strides: 2 }), x);
  x = act(norm(x, `${name}.norm1`), `${name}.act1`);
  x = conv(x, `${name}.conv2`, width, 3, init);
  return act(norm(x, `${name}.norm2`), `${name}.act2`);
}

/** Sets the first in_channels filters of an HWIO kernel to the identity (dirac_ on w[:in]). */
function dirac(model: tf.LayersModel, name: string): void {
  const layer = model.getLayer(name);
  const [kernel] = layer.getWeights();
  const [kh, kw, cin, cout] = kernel.shape;
  const w = kernel.dataSync().slice();
  const ch = (cy: number, cx: number, i: number, o: number) =>
    ((cy * kw + cx) * cin + i) * cout + o;
  for (let o = 0; o < Math.min(cin, cout); o++)
    for (let cy = 0; cy < kh; cy++)
      for (let cx = 0; cx < kw; cx++)
        for (let i = 0; i < cin; i++)
          w[ch(cy, cx, i, o)] = cy === (kh - 1) / 2 && cx === (kw - 1) / 2 && i === o ? 1 : 0;
  const t = tfc.tensor(w, kernel.shape);
  layer.setWeights([t]);
  t.dispose();
}

export function airbench94(
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  const x0 = modelInput(input, classes);
  const init = new Init(options.seed);
  const mean = input.channels === 3 ? AIRBENCH_MEAN : Array(input.channels).fill(0.5);
  const std = input.channels === 3 ? AIRBENCH_STD : Array(input.channels).fill(0.25);
  let x = ap(new Normalise(mean, std, 'normalise'), x0);
  const whiten = tf.layers.conv2d({
    name: 'whiten',
    filters: WHITEN_WIDTH,
    kernelSize: 2,
    padding: 'valid',
    useBias: true,
    kernelInitializer: init.uniform(input.channels * 4),
    biasInitializer: 'zeros',
  });
  x = act(ap(whiten, x), 'act0');
  const dirs: string[] = [];
  AIRBENCH_WIDTHS.forEach((w, i) => (x = group(x, `group${i + 1}`, w, init, dirs)));
  x = ap(tf.layers.maxPooling2d({ name: 'pool', poolSize: 3, strides: 3 }), x);
  x = ap(tf.layers.flatten({ name: 'flatten' }), x);
  const fanIn = x.shape[x.shape.length - 1] as number;
  x = ap(
    tf.layers.dense({
      name: 'linear',
      units: classes,
      useBias: false,
      kernelInitializer: init.uniform(fanIn),
    }),
    x,
  );
  const logits = ap(new Scale(AIRBENCH_SCALE, 'scale'), x);
  const model = tf.model({ name: 'airbench94', inputs: x0, outputs: logits });
  for (const d of dirs) dirac(model, d);
  for (const w of model.weights)
    if (w.originalName === 'whiten/kernel' || w.originalName.endsWith('/gamma'))
      w.trainable = false;
  return model;
}

/**
 * The whitening filters from training images (HWC uint8, `n` images of h×w×c, values /255 then
 * normalised as the model does): the eigenvectors of the covariance (about 0, as the reference)
 * of all 2×2 patches, largest eigenvalue first, each divided by √(eigenvalue + 5e-4), then their
 * negatives: an HWIO kernel [2, 2, c, 2·4c]. Patch elements are ordered (c, dy, dx) as PyTorch's
 * unfold, so the filters equal the reference's.
 */
export function whiteningKernel(
  images: Uint8Array,
  n: number,
  h: number,
  w: number,
  c: number,
  eps = 5e-4,
): { values: Float32Array; shape: [number, number, number, number] } {
  const d = 4 * c;
  const mean = c === 3 ? AIRBENCH_MEAN : Array(c).fill(0.5);
  const std = c === 3 ? AIRBENCH_STD : Array(c).fill(0.25);
  const cov = new Float64Array(d * d);
  const p = new Float64Array(d);
  const px = (img: number, y: number, x: number, ch: number) =>
    (images[((img * h + y) * w + x) * c + ch] / 255 - mean[ch]) / std[ch];
  let count = 0;
  for (let i = 0; i < n; i++)
    for (let y = 0; y + 1 < h; y++)
      for (let x = 0; x + 1 < w; x++) {
        for (let ch = 0; ch < c; ch++)
          for (let dy = 0; dy < 2; dy++)
            for (let dx = 0; dx < 2; dx++) p[ch * 4 + dy * 2 + dx] = px(i, y + dy, x + dx, ch);
        for (let a = 0; a < d; a++) {
          const pa = p[a];
          for (let b = a; b < d; b++) cov[a * d + b] += pa * p[b];
        }
        count++;
      }
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      cov[a * d + b] /= count;
      cov[b * d + a] = cov[a * d + b];
    }
  const { values, vectors } = symmetricEigen(cov, d);
  const order = [...values.keys()].sort((a, b) => values[b] - values[a]);
  const out = new Float32Array(2 * 2 * c * 2 * d);
  order.forEach((k, o) => {
    const s = 1 / Math.sqrt(values[k] + eps);
    for (let ch = 0; ch < c; ch++)
      for (let dy = 0; dy < 2; dy++)
        for (let dx = 0; dx < 2; dx++) {
          const v = vectors[(ch * 4 + dy * 2 + dx) * d + k] * s;
          const at = ((dy * 2 + dx) * c + ch) * 2 * d;
          out[at + o] = v;
          out[at + d + o] = -v;
        }
  });
  return { values: out, shape: [2, 2, c, 2 * d] };
}

/**
 * Eigen-decomposition of a symmetric d×d matrix (row-major) by cyclic Jacobi rotations, in
 * float64: eigenvalues, and eigenvectors as the columns of `vectors` (row-major d×d). Each
 * eigenvector's sign is fixed so that its largest-magnitude element is positive; the reference
 * (LAPACK's eigh) fixes no sign, so filters may differ from it by a sign, which the pairing with
 * their negatives makes immaterial up to the order of the two halves.
 */
export function symmetricEigen(
  m: Float64Array,
  d: number,
): { values: number[]; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < d; p++)
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1);
        const sn = t * cs;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p];
          const akq = a[k * d + q];
          a[k * d + p] = cs * akp - sn * akq;
          a[k * d + q] = sn * akp + cs * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k];
          const aqk = a[q * d + k];
          a[p * d + k] = cs * apk - sn * aqk;
          a[q * d + k] = sn * apk + cs * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p];
          const vkq = v[k * d + q];
          v[k * d + p] = cs * vkp - sn * vkq;
          v[k * d + q] = sn * vkp + cs * vkq;
        }
      }
  }
  const values = Array.from({ length: d }, (_, i) => a[i * d + i]);
  for (let k = 0; k < d; k++) {
    let big = 0;
    for (let i = 0; i < d; i++) if (Math.abs(v[i * d + k]) > Math.abs(big)) big = v[i * d + k];
    if (big < 0) for (let i = 0; i < d; i++) v[i * d + k] = -v[i * d + k];
  }
  return { values, vectors: v };
}
