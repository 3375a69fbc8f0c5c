/**
 * Training-batch augmentation for the OPS paper's evaluation protocol (ICLR 2023), on the uint8
 * H×W×C images of a {@link Dataset}, in plain loops with no tf ops (so it can run in a worker).
 * Output is float32 in [0, 1], NHWC, with no normalisation (as in the paper).
 *
 * Strategies:
 * - `none`: the images as they are.
 * - `standard`: random crop with 4-pixel zero padding (offsets 0..8 per axis, as torchvision's
 *   `RandomCrop(32, padding=4)`), then horizontal flip with p = 0.5.
 * - `cutout`: standard, then one 16×16 hole filled with 0 whose centre is uniform over the image
 *   and which is clipped at the borders (DeVries & Taylor 2017).
 * - `mixup`: standard, then x = λ·x + (1−λ)·x[perm], λ ~ Beta(α, α), α = 1, one λ and one random
 *   permutation per batch (Zhang et al. 2018); the loss is λ·CE(y) + (1−λ)·CE(y[perm]).
 * - `cutmix`: standard, then one box of x[perm] pasted into every image (Yun et al. 2019): λ ~
 *   Beta(α, α), box side √(1−λ) of the image's (the reference code's `rand_bbox`: centre uniform,
 *   sides clipped), λ then set to 1 − (box area)/(H·W) exactly.
 * - `randaugment`: UDA-style RandAugment (Xie et al. 2020) on the uint8 image, then standard. Two
 *   (op, magnitude) pairs drawn with replacement from the ops of {@link RA_OPS} × magnitudes 1..9,
 *   each applied with p = 0.5. See {@link applyRaOp} for each op and where it departs from PIL.
 * - `ueraser`: standard, then UEraser-Lite (Qin et al. 2023) on every image, fresh draws each
 *   time it is seen: plasma brightness (roughness U(0.1, 0.7), intensity U(0, 1)), plasma
 *   contrast (roughness U(0.1, 0.7)), a random channel permutation with p = 0.5, then one
 *   TrivialAugmentWide op; see {@link uEraserImage}.
 *
 * Random draws happen stage by stage for the whole batch (first RandAugment, then crops and flips,
 * then holes or mixing), so the same seed gives the same crops and flips under `standard`,
 * `cutout`, `mixup` and `cutmix`; the later stages can be checked against the standard batch.
 */
import type { Dataset } from '../data/dataset.js';
import type { Rng } from '../nn/rng.js';
import * as pil from '../transforms/pil.js';
import { type AffineMatrix, clamp, type Geometry } from '../transforms/pil.js';
import { plasmaBrightness, plasmaContrast } from '../transforms/plasma.js';
import { trivialAugment } from '../transforms/trivial-augment.js';

export type Strategy =
  'standard' | 'cutout' | 'mixup' | 'cutmix' | 'randaugment' | 'ueraser' | 'none';

export const STRATEGIES: readonly Strategy[] = [
  'standard',
  'cutout',
  'mixup',
  'cutmix',
  'randaugment',
  'ueraser',
  'none',
];

export function isStrategy(s: string): s is Strategy {
  return (STRATEGIES as readonly string[]).includes(s);
}

export type { Geometry } from '../transforms/pil.js';
/** PIL's affine sampling and rotation matrix, used by the geometric ops (now in transforms/). */
export { affine, rotationMatrix } from '../transforms/pil.js';

/** A half-open box: rows y0..y1-1, columns x0..x1-1. */
export interface Box {
  y0: number;
  x0: number;
  y1: number;
  x1: number;
}

/** How a mixup / cutmix batch was mixed: target i is λ·y[i] + (1−λ)·y[perm[i]]. */
export interface Mix {
  perm: Int32Array;
  lambda: number;
  /** cutmix only: the box of x[perm] pasted into every image. */
  box?: Box;
}

export interface Batch {
  /** n×H×W×C float32 in [0, 1], NHWC. */
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  mix?: Mix;
}

export interface RandAugmentOptions {
  /** Ops drawn per image (with replacement). Default 2. */
  n?: number;
  /** Probability that a drawn op is applied. Default 0.5. */
  prob?: number;
  /** Magnitudes are drawn uniformly from minMagnitude..maxMagnitude (of 10). Default 1..9. */
  minMagnitude?: number;
  maxMagnitude?: number;
  /** The ops to draw from. Default {@link RA_OPS} (15 ops). */
  ops?: readonly RaOp[];
  /** Fill of the pixels that geometric ops uncover and of the RandAugment cutout. Default 128. */
  fill?: number;
}

export interface AugmentOptions {
  /** Zero padding of the random crop, in pixels. Default 4. */
  padding?: number;
  /** Horizontal flip probability. Default 0.5. */
  flipProb?: number;
  /** Side of the cutout hole. Default 16. */
  cutoutSize?: number;
  /** α of the Beta(α, α) of mixup and cutmix; α ≤ 0 means λ = 1. Default 1. */
  alpha?: number;
  randAugment?: RandAugmentOptions;
  /** A buffer of at least n·H·W·C floats to write into (reused between batches). */
  out?: Float32Array;
}

/** Math.fround(v / 255) for every byte value. */
const TO_UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/**
 * Augments the images `indices` of `ds` into one float32 NHWC batch in [0, 1]. For mixup and
 * cutmix, `mix` says how to mix the labels (see {@link mixTargets}).
 */
export function makeBatch(
  ds: Dataset,
  indices: Int32Array | number[],
  strategy: Strategy,
  rng: Rng,
  opts: AugmentOptions = {},
): Batch {
  if (!isStrategy(strategy)) throw new RangeError(`makeBatch: unknown strategy '${strategy}'`);
  const { height: H, width: W, channels: C } = ds;
  const S = H * W * C;
  const n = indices.length;
  const count = ds.labels.length;
  const padding = opts.padding ?? 4;
  const flipProb = opts.flipProb ?? 0.5;
  const alpha = opts.alpha ?? 1;
  if (!Number.isInteger(padding) || padding < 0)
    throw new RangeError(`makeBatch: padding ${padding} must be a non-negative integer`);
  if (ds.images.length < count * S)
    throw new RangeError(`makeBatch: ${ds.images.length} pixel bytes for ${count} images`);

  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const idx = indices[i];
    if (!Number.isInteger(idx) || idx < 0 || idx >= count)
      throw new RangeError(`makeBatch: index ${idx} out of range 0..${count - 1}`);
    labels[i] = ds.labels[idx];
  }

  const x = opts.out ? opts.out.subarray(0, n * S) : new Float32Array(n * S);
  if (x.length !== n * S)
    throw new RangeError(`makeBatch: out holds ${opts.out?.length} floats, need ${n * S}`);
  const shape: Batch['shape'] = [n, H, W, C];
  const batch = new Uint8Array(n * S);
  const image = (i: number) => ds.images.subarray(indices[i] * S, (indices[i] + 1) * S);

  if (strategy === 'none') {
    for (let i = 0; i < n; i++) batch.set(image(i), i * S);
    toUnit(batch, x);
    return { x, shape, labels };
  }

  // Stage 1: RandAugment on copies of the source images.
  let sources: Uint8Array[];
  if (strategy === 'randaugment') {
    const scratch = new Uint8Array(S);
    sources = [];
    for (let i = 0; i < n; i++) {
      const img = image(i).slice();
      randAugmentImage(img, ds, rng, opts.randAugment, scratch);
      sources.push(img);
    }
  } else {
    sources = Array.from({ length: n }, (_, i) => image(i));
  }

  // Stage 2: crop and flip, for the whole batch.
  const span = 2 * padding + 1;
  for (let i = 0; i < n; i++) {
    const dy = rng.int(span);
    const dx = rng.int(span);
    const flip = rng.uniform() < flipProb;
    cropFlip(sources[i], batch.subarray(i * S, (i + 1) * S), ds, dy - padding, dx - padding, flip);
  }

  // Stage 3: holes, UEraser or mixing.
  if (strategy === 'ueraser') {
    const scratch = new Uint8Array(S);
    const work = new Float64Array(S);
    for (let i = 0; i < n; i++)
      uEraserImage(batch.subarray(i * S, (i + 1) * S), ds, rng, work, scratch);
  }
  if (strategy === 'cutout') {
    const size = opts.cutoutSize ?? 16;
    for (let i = 0; i < n; i++) {
      const box = cutoutBox(ds, size, rng);
      fillBox(batch.subarray(i * S, (i + 1) * S), ds, box, 0);
    }
  }
  if (strategy === 'mixup') {
    const lambda = alpha > 0 ? rng.beta(alpha, alpha) : 1;
    const perm = rng.permutation(n);
    const mu = 1 - lambda;
    for (let i = 0; i < n; i++) {
      const a = i * S;
      const b = perm[i] * S;
      for (let k = 0; k < S; k++)
        x[a + k] = lambda * TO_UNIT[batch[a + k]] + mu * TO_UNIT[batch[b + k]];
    }
    return { x, shape, labels, mix: { perm, lambda } };
  }
  if (strategy === 'cutmix') {
    const drawn = alpha > 0 ? rng.beta(alpha, alpha) : 1;
    const perm = rng.permutation(n);
    const box = cutmixBox(ds, drawn, rng);
    const pasted = new Uint8Array(n * S);
    pasted.set(batch);
    const rowLen = (box.x1 - box.x0) * C;
    for (let i = 0; i < n; i++) {
      const a = i * S;
      const b = perm[i] * S;
      for (let y = box.y0; y < box.y1; y++) {
        const o = (y * W + box.x0) * C;
        pasted.set(batch.subarray(b + o, b + o + rowLen), a + o);
      }
    }
    toUnit(pasted, x);
    const lambda = 1 - ((box.y1 - box.y0) * (box.x1 - box.x0)) / (H * W);
    return { x, shape, labels, mix: { perm, lambda, box } };
  }
  toUnit(batch, x);
  return { x, shape, labels };
}

/**
 * Soft targets n×classes for a batch: one-hot labels, or λ·onehot(y) + (1−λ)·onehot(y[perm]) for
 * a mixed batch; cross-entropy against them equals λ·CE(y) + (1−λ)·CE(y[perm]).
 */
export function mixTargets(labels: Int32Array, classes: number, mix?: Mix): Float32Array {
  const n = labels.length;
  const t = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    if (!mix) {
      t[i * classes + labels[i]] = 1;
    } else {
      t[i * classes + labels[i]] += mix.lambda;
      t[i * classes + labels[mix.perm[i]]] += 1 - mix.lambda;
    }
  }
  return t;
}

function toUnit(src: Uint8Array, dst: Float32Array): void {
  for (let k = 0; k < src.length; k++) dst[k] = TO_UNIT[src[k]];
}

/**
 * dst = src shifted by (sy, sx) with zero fill, then mirrored left-right when `flip`:
 * dst(y, x) = src(y + sy, x' + sx) with x' = W−1−x when flipped, else x; 0 outside the image.
 * A random crop with padding p is sy, sx uniform in −p..p.
 */
export function cropFlip(
  src: Uint8Array,
  dst: Uint8Array,
  g: Geometry,
  sy: number,
  sx: number,
  flip: boolean,
): void {
  const { height: H, width: W, channels: C } = g;
  for (let y = 0; y < H; y++) {
    const yy = y + sy;
    const row = y * W * C;
    if (yy < 0 || yy >= H) {
      dst.fill(0, row, row + W * C);
      continue;
    }
    const srow = yy * W * C;
    for (let x = 0; x < W; x++) {
      const xx = (flip ? W - 1 - x : x) + sx;
      const o = row + x * C;
      if (xx < 0 || xx >= W) {
        for (let c = 0; c < C; c++) dst[o + c] = 0;
      } else {
        const s = srow + xx * C;
        for (let c = 0; c < C; c++) dst[o + c] = src[s + c];
      }
    }
  }
}

/**
 * A cutout hole: centre (cy, cx) uniform over the image, rows cy − ⌊size/2⌋ .. that + size − 1,
 * clipped (for even sizes the same box as DeVries & Taylor's code).
 */
export function cutoutBox(g: Geometry, size: number, rng: Rng): Box {
  const cy = rng.int(g.height);
  const cx = rng.int(g.width);
  const h = Math.floor(size / 2);
  return {
    y0: clamp(cy - h, 0, g.height),
    x0: clamp(cx - h, 0, g.width),
    y1: clamp(cy - h + size, 0, g.height),
    x1: clamp(cx - h + size, 0, g.width),
  };
}

/** The reference CutMix `rand_bbox`: sides ⌊H·√(1−λ)⌋, ⌊W·√(1−λ)⌋ about a uniform centre, clipped. */
export function cutmixBox(g: Geometry, lambda: number, rng: Rng): Box {
  const rat = Math.sqrt(1 - lambda);
  const cutW = Math.floor(g.width * rat);
  const cutH = Math.floor(g.height * rat);
  const cx = rng.int(g.width);
  const cy = rng.int(g.height);
  const hw = Math.floor(cutW / 2);
  const hh = Math.floor(cutH / 2);
  return {
    y0: clamp(cy - hh, 0, g.height),
    x0: clamp(cx - hw, 0, g.width),
    y1: clamp(cy + hh, 0, g.height),
    x1: clamp(cx + hw, 0, g.width),
  };
}

/** Sets every channel of the pixels in `box` to `value` (or to value[c] per channel). */
export function fillBox(img: Uint8Array, g: Geometry, box: Box, value: number | number[]): void {
  const { width: W, channels: C } = g;
  for (let y = box.y0; y < box.y1; y++)
    for (let x = box.x0; x < box.x1; x++) {
      const o = (y * W + x) * C;
      for (let c = 0; c < C; c++) img[o + c] = typeof value === 'number' ? value : value[c];
    }
}

// ---------------------------------------------------------------------------------------------
// RandAugment

/**
 * The 15 ops drawn from by default (UDA's list, with identity in place of UDA's invert, as in
 * RandAugment's own list; `invert` can be named in {@link RandAugmentOptions.ops}).
 */
export const RA_OPS = [
  'identity',
  'autocontrast',
  'equalize',
  'rotate',
  'solarize',
  'color',
  'posterize',
  'contrast',
  'brightness',
  'sharpness',
  'shear_x',
  'shear_y',
  'translate_x',
  'translate_y',
  'cutout',
] as const;

export type RaOp = (typeof RA_OPS)[number] | 'invert';

/**
 * RandAugment (UDA policy) on one uint8 H×W×C image, in place: `n` times, draw an op and a
 * magnitude uniformly, and apply it with probability `prob`.
 */
export function randAugmentImage(
  img: Uint8Array,
  g: Geometry,
  rng: Rng,
  opts: RandAugmentOptions = {},
  scratch?: Uint8Array,
): void {
  const n = opts.n ?? 2;
  const prob = opts.prob ?? 0.5;
  const lo = opts.minMagnitude ?? 1;
  const hi = opts.maxMagnitude ?? 9;
  const ops = opts.ops ?? RA_OPS;
  const fill = opts.fill ?? 128;
  if (ops.length === 0) throw new RangeError('randAugmentImage: no ops to draw from');
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo <= hi))
    throw new RangeError(`randAugmentImage: magnitudes ${lo}..${hi} are not an integer range`);
  const buf = scratch ?? new Uint8Array(img.length);
  for (let k = 0; k < n; k++) {
    const op = ops[rng.int(ops.length)];
    const magnitude = lo + rng.int(hi - lo + 1);
    if (rng.uniform() < prob) applyRaOp(op, img, g, magnitude, rng, fill, buf);
  }
}

/**
 * One RandAugment op on a uint8 H×W×C image, in place, at `magnitude` on UDA's 0..10 scale
 * (`float_parameter(m, max) = m·max/10`, `int_parameter(m, max) = ⌊m·max/10⌋`); `rng` draws the
 * random signs of geometric ops and the cutout centre. Ops and their parameters, following UDA's
 * `augmentation_transforms.py` and PIL:
 *
 * - identity; invert (255 − v).
 * - autocontrast: per channel, PIL `ImageOps.autocontrast` (stretch min..max to 0..255).
 * - equalize: per channel, PIL `ImageOps.equalize` (its exact lookup table).
 * - rotate: ±⌊30m/10⌋ degrees about the centre, nearest neighbour (PIL `Image.rotate`).
 * - solarize: invert the values ≥ 256 − ⌊256m/10⌋.
 * - posterize: keep the top 4 − ⌊4m/10⌋ bits.
 * - color, contrast, brightness, sharpness: PIL `ImageEnhance` with factor 0.1 + 1.8m/10 (colour
 *   blends with the PIL luma image, contrast with the rounded mean luma, brightness with black,
 *   sharpness with PIL's SMOOTH-filtered image, border pixels unchanged).
 * - shear_x, shear_y: ±0.3m/10, PIL affine (1, s, 0, 0, 1, 0) / (1, 0, 0, s, 1, 0).
 * - translate_x, translate_y: ±⌊m·(10·W/32)/10⌋ pixels (UDA's 10 pixels at most, for 32-pixel
 *   images; scaled with the image size).
 * - cutout: a square of side ⌊m·(20·min(H,W)/32)/10⌋, centre uniform, clipped, set to `fill`.
 *
 * With `fill` = 0 (PIL's default fill colour), every op but cutout gives PIL 9's bytes exactly
 * (the tests check this against PIL): lookup tables, `float` blends truncated, the SMOOTH filter,
 * and the affine and rotation loops with PIL's own coordinate accumulation.
 *
 * Departures from UDA: pixels uncovered by geometric ops and the cutout square are set to `fill`
 * (default 128, mid-gray), where UDA ends up with the dataset mean (it fills in normalised space;
 * there is no normalisation here); translate and cutout sizes scale with the image size (UDA's
 * are for 32×32). For grayscale images (C = 1) `color` is the identity (as in PIL: the degenerate
 * image is the image itself) and luma is the value itself.
 */
export function applyRaOp(
  op: RaOp,
  img: Uint8Array,
  g: Geometry,
  magnitude: number,
  rng: Rng,
  fill = 128,
  scratch?: Uint8Array,
): void {
  const { height: H, width: W, channels: C } = g;
  const floatParam = (max: number) => (magnitude * max) / 10;
  const intParam = (max: number) => Math.floor((magnitude * max) / 10);
  const sign = () => (rng.uniform() < 0.5 ? -1 : 1);
  const factor = floatParam(1.8) + 0.1;
  const geometric = (m: AffineMatrix) => {
    const buf = scratch ?? new Uint8Array(img.length);
    pil.affine(img, buf, g, m, fill);
    img.set(buf.subarray(0, img.length));
  };
  switch (op) {
    case 'identity':
      return;
    case 'invert':
      pil.invert(img);
      return;
    case 'autocontrast':
      pil.autocontrast(img, C);
      return;
    case 'equalize':
      pil.equalize(img, C);
      return;
    case 'rotate':
      geometric(pil.rotationMatrix(intParam(30) * sign(), g));
      return;
    case 'solarize':
      pil.solarize(img, 256 - intParam(256));
      return;
    case 'posterize':
      pil.posterize(img, 4 - intParam(4));
      return;
    case 'color':
      pil.color(img, C, factor);
      return;
    case 'contrast':
      pil.contrast(img, g, factor);
      return;
    case 'brightness':
      pil.brightness(img, factor);
      return;
    case 'sharpness':
      pil.sharpness(img, g, factor);
      return;
    case 'shear_x':
      geometric([1, floatParam(0.3) * sign(), 0, 0, 1, 0]);
      return;
    case 'shear_y':
      geometric([1, 0, 0, floatParam(0.3) * sign(), 1, 0]);
      return;
    case 'translate_x':
      geometric([1, 0, intParam((10 * W) / 32) * sign(), 0, 1, 0]);
      return;
    case 'translate_y':
      geometric([1, 0, 0, 0, 1, intParam((10 * H) / 32) * sign()]);
      return;
    case 'cutout': {
      const size = intParam((20 * Math.min(H, W)) / 32);
      if (size <= 0) return;
      const cy = rng.int(H);
      const cx = rng.int(W);
      const h = Math.floor(size / 2);
      // UDA's create_cutout_mask: rows cy − size//2 .. cy + size//2 − 1, clipped.
      fillBox(
        img,
        g,
        {
          y0: clamp(cy - h, 0, H),
          x0: clamp(cx - h, 0, W),
          y1: clamp(cy + h, 0, H),
          x1: clamp(cx + h, 0, W),
        },
        fill,
      );
      return;
    }
    default: {
      const never: never = op;
      throw new RangeError(`applyRaOp: unknown op '${String(never)}'`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// UEraser-Lite

/**
 * UEraser-Lite on one uint8 H×W×C image, in place, as the authors' kornia pipeline
 * (`RandomPlasmaBrightness(roughness=(0.1, 0.7), intensity=(0, 1), p=1)`,
 * `RandomPlasmaContrast(roughness=(0.1, 0.7), p=1)`, `RandomChannelShuffle(p=0.5)`,
 * `TrivialAugment()`): the plasma ops on v/255 in float64 (transforms/plasma.ts), rounded back to
 * uint8 (⌊255·x + ½⌋), a uniformly random permutation of the channels with p = 0.5, then one
 * TrivialAugmentWide op (transforms/trivial-augment.ts).
 *
 * Departures from the reference: the image is rounded to 8 bits after the plasma ops (kornia
 * stays in float), and TrivialAugment uses torchvision's PIL ops and "wide" bins where kornia has
 * its own tensor ops and bins.
 */
export function uEraserImage(
  img: Uint8Array,
  g: Geometry,
  rng: Rng,
  work = new Float64Array(img.length),
  scratch?: Uint8Array,
): void {
  const { height: H, width: W, channels: C } = g;
  for (let k = 0; k < img.length; k++) work[k] = img[k] / 255;
  const roughB = 0.1 + 0.6 * rng.uniform();
  const intensity = rng.uniform();
  plasmaBrightness(work, H, W, C, roughB, intensity, rng);
  plasmaContrast(work, H, W, C, 0.1 + 0.6 * rng.uniform(), rng);
  for (let k = 0; k < img.length; k++) img[k] = Math.floor(255 * work[k] + 0.5);
  if (C > 1 && rng.uniform() < 0.5) {
    const perm = rng.permutation(C);
    const px = new Uint8Array(C);
    for (let o = 0; o < img.length; o += C) {
      for (let c = 0; c < C; c++) px[c] = img[o + perm[c]];
      img.set(px, o);
    }
  }
  trivialAugment(img, g, rng, scratch);
}
