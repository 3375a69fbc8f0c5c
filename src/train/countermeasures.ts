/**
 * Countermeasures a trainer applies once to a (protected) training set before training, to test
 * how much protection survives them: the data owner's view of "what breaks it". Each is one
 * function of src/transforms/ (where its exact definition and its reference are documented):
 *
 * - `grayscale`: PIL's `convert('L')` luma copied to every channel (transforms/pixels.ts).
 * - `jpeg[:Q]`: a JPEG round trip at quality Q, 1–100, default 10, equal to PIL's (transforms/jpeg.ts).
 * - `bdr[:B]`: keep the B most significant bits of each value, 1–8, default 2 (PIL posterize).
 * - `median:K`, `mean:K`: per-channel K×K median / box filter, K odd 3–15, border replicated
 *   (OpenCV `medianBlur`, `blur`; transforms/filters.ts).
 * - `gaussian:S[:K]`: Gaussian blur with σ = S (0 < S ≤ 10), K×K (odd 1–31; default OpenCV's
 *   round(6σ+1)|1), OpenCV's 8-bit fixed point, border replicated.
 * - `orthogonal-projection`: Sandoval-Segura et al.'s projection of every image off the weights
 *   of a linear classifier fitted to the training set (transforms/projection.ts).
 * - `resize:S[:interp][:noaa]`: every image scaled to S×S as torchvision's `Resize((S, S))` does
 *   on the PIL images `ImageFolder` loads: interp bilinear (torchvision's default), bicubic,
 *   nearest or lanczos, always antialiased when shrinking (PIL); `noaa` is the tensor path with
 *   `antialias=False` instead (bilinear or bicubic only; transforms/resize.ts).
 * - `center-crop:S`: torchvision's `CenterCrop(S)`: the central S×S pixels at the image's own
 *   scale (no resize; zero padding where the image is smaller than S).
 * - `rrc:S[:min-scale][:interp]`: torchvision's `RandomResizedCrop(S, scale=(min-scale, 1),
 *   ratio=(3/4, 4/3))`, min-scale default 0.08, interp default bilinear: one crop per image, drawn
 *   once from the project's Rng seeded 0 (trainers draw a new crop every epoch; this is the fixed
 *   draw), then resized to S×S. `rrc:S[:min-scale][:interp]:epoch` is the trainer's real pipeline:
 *   a new crop of every image at every epoch ({@link epochCrops}, run by the training loop; the
 *   training set is kept at its own size until then).
 *
 * The resizing countermeasures change the image size, so the test split goes through the trainer's
 * evaluation transform too ({@link evalTransform}): `resize:S` and `center-crop:S` the same, `rrc:S`
 * a plain resize to S×S with its interpolation. The others leave the test split as it is.
 * Only the training split is changed; accuracy is still measured on the clean test split.
 * Every name is parsed here, and a malformed one is refused naming the flag.
 */
import { fail } from '../errors.js';
import { type Dataset, imageSize } from '../data/dataset.js';
import {
  boxFilter,
  gaussianFilter,
  gaussianKernelSize,
  medianFilter,
} from '../transforms/filters.js';
import { breathe, unlessStopped } from '../transforms/cooperate.js';
import { jpegRoundTrip } from '../transforms/jpeg.js';
import { bitDepth, grayscale } from '../transforms/pixels.js';
import { fitLinear, orthonormalRows, projectOut } from '../transforms/projection.js';
import {
  centerCrop,
  crop,
  INTERPOLATIONS,
  type Interpolation,
  randomResizedCropParams,
  resizePil,
  resizeTensor,
} from '../transforms/resize.js';
import type { Geometry } from '../transforms/pil.js';
import { Rng } from '../nn/rng.js';

export type Countermeasure =
  | { kind: 'none' }
  | { kind: 'grayscale' }
  | { kind: 'jpeg'; quality: number }
  | { kind: 'bdr'; bits: number }
  | { kind: 'median'; size: number }
  | { kind: 'mean'; size: number }
  | { kind: 'gaussian'; sigma: number; size: number }
  | { kind: 'orthogonal-projection' }
  | { kind: 'resize'; size: number; interp: Interpolation; antialias: boolean }
  | { kind: 'center-crop'; size: number }
  | { kind: 'rrc'; size: number; minScale: number; interp: Interpolation; epoch: boolean };

export const COUNTERMEASURES = [
  'none',
  'grayscale',
  'jpeg[:quality]',
  'bdr[:bits]',
  'median:K',
  'mean:K',
  'gaussian:sigma[:K]',
  'orthogonal-projection',
  'resize:S[:interp][:noaa]',
  'center-crop:S',
  'rrc:S[:min-scale][:interp][:epoch]',
] as const;

/**
 * Countermeasures that act at every epoch rather than once on the images: training strategies
 * (src/train/augment.ts). In an audit's `--countermeasures` such a name adds the row of that
 * strategy, which replaces the standard strategy's augmentation (UEraser-Lite is flip and crop,
 * then its own per-sample transforms), so it pairs with `--strategies standard` only.
 */
export const TRAINING_COUNTERMEASURES = ['ueraser'] as const;

export function isTrainingCountermeasure(name: string): boolean {
  return (TRAINING_COUNTERMEASURES as readonly string[]).includes(name);
}

/** An integer lo–hi (odd when asked) from `text`, or a one-line error naming the flag. */
function intIn(text: string, lo: number, hi: number, what: string, flag: string, odd = false) {
  const v = Number(text);
  if (!/^\d+$/.test(text) || v < lo || v > hi || (odd && v % 2 === 0))
    fail(`${flag}: ${what} must be ${odd ? 'an odd' : 'an'} integer ${lo}–${hi} (got '${text}')`);
  return v;
}

/**
 * Parses one countermeasure name: `none`, `grayscale`, `jpeg[:Q]`, `bdr[:B]`, `median:K`,
 * `mean:K`, `gaussian:S[:K]`, `orthogonal-projection`; errors name the flag.
 */
export function parseCountermeasure(text: string, flag = '--countermeasure'): Countermeasure {
  const t = text.trim().toLowerCase();
  const [name, ...args] = t.split(':');
  const nargs = (min: number, max: number) => {
    if (args.length < min || args.length > max)
      fail(
        `${flag}: '${text}' takes ${min === max ? min : `${min}–${max}`} parameter(s) after ` +
          `'${name}'; valid: ${COUNTERMEASURES.join(', ')}`,
      );
  };
  switch (name) {
    case 'none':
    case 'orthogonal-projection':
      nargs(0, 0);
      return { kind: name };
    case 'grayscale':
    case 'greyscale':
      nargs(0, 0);
      return { kind: 'grayscale' };
    case 'jpeg':
      nargs(0, 1);
      return { kind: 'jpeg', quality: args[0] ? intIn(args[0], 1, 100, 'JPEG quality', flag) : 10 };
    case 'bdr':
      nargs(0, 1);
      return { kind: 'bdr', bits: args[0] ? intIn(args[0], 1, 8, 'bdr bits', flag) : 2 };
    case 'median':
    case 'mean':
      nargs(1, 1);
      return { kind: name, size: intIn(args[0], 3, 15, `${name} window`, flag, true) };
    case 'gaussian': {
      nargs(1, 2);
      const sigma = Number(args[0]);
      if (!/^\d*\.?\d+(e-?\d+)?$/.test(args[0]) || !(sigma > 0 && sigma <= 10))
        fail(`${flag}: gaussian σ must be a number in (0, 10] (got '${args[0]}')`);
      const size = args[1]
        ? intIn(args[1], 1, 31, 'gaussian kernel size', flag, true)
        : gaussianKernelSize(sigma);
      return { kind: 'gaussian', sigma, size };
    }
    case 'resize': {
      nargs(1, 3);
      const size = intIn(args[0], 1, 4096, 'resize size', flag);
      const rest = args.slice(1);
      const antialias = !rest.includes('noaa');
      const named = rest.filter((a) => a !== 'noaa');
      if (named.length > 1) fail(`${flag}: '${text}': one interpolation at most`);
      const interp = interpolation(named[0] ?? 'bilinear', flag);
      if (!antialias && interp !== 'bilinear' && interp !== 'bicubic')
        fail(`${flag}: '${text}': noaa (the tensor path) takes bilinear or bicubic`);
      return { kind: 'resize', size, interp, antialias };
    }
    case 'center-crop':
      nargs(1, 1);
      return { kind: 'center-crop', size: intIn(args[0], 1, 4096, 'center-crop size', flag) };
    case 'rrc': {
      nargs(1, 4);
      const size = intIn(args[0], 1, 4096, 'rrc size', flag);
      let minScale = 0.08;
      let interp: Interpolation = 'bilinear';
      const rest = args.slice(1);
      const epoch = rest.includes('epoch');
      for (const a of rest.filter((a) => a !== 'epoch')) {
        if (/^\d*\.?\d+$/.test(a)) {
          minScale = Number(a);
          if (!(minScale > 0 && minScale <= 1))
            fail(`${flag}: rrc min-scale must be a number in (0, 1] (got '${a}')`);
        } else interp = interpolation(a, flag);
      }
      return { kind: 'rrc', size, minScale, interp, epoch };
    }
  }
  return fail(`unknown countermeasure '${text}' (${flag}); valid: ${COUNTERMEASURES.join(', ')}`);
}

function interpolation(text: string, flag: string): Interpolation {
  if (!(INTERPOLATIONS as readonly string[]).includes(text))
    fail(`${flag}: unknown interpolation '${text}'; valid: ${INTERPOLATIONS.join(', ')}`);
  return text as Interpolation;
}

/** The countermeasure's name as results and tables show it (parses back to the same). */
export function countermeasureName(c: Countermeasure): string {
  switch (c.kind) {
    case 'jpeg':
      return `jpeg:${c.quality}`;
    case 'bdr':
      return `bdr:${c.bits}`;
    case 'median':
    case 'mean':
      return `${c.kind}:${c.size}`;
    case 'gaussian':
      return c.size === gaussianKernelSize(c.sigma)
        ? `gaussian:${c.sigma}`
        : `gaussian:${c.sigma}:${c.size}`;
    case 'resize':
      return `resize:${c.size}${c.interp === 'bilinear' ? '' : `:${c.interp}`}${c.antialias ? '' : ':noaa'}`;
    case 'center-crop':
      return `center-crop:${c.size}`;
    case 'rrc':
      return (
        `rrc:${c.size}${c.minScale === 0.08 ? '' : `:${c.minScale}`}` +
        (c.interp === 'bilinear' ? '' : `:${c.interp}`) +
        (c.epoch ? ':epoch' : '')
      );
    default:
      return c.kind;
  }
}

/** One image of geometry `g` through a resizing countermeasure (S×S out). */
type Reshape = (src: Uint8Array, g: Geometry) => Uint8Array;

/** The per-image function of a resizing countermeasure, or null for the others. */
function reshapeOf(c: Countermeasure): Reshape | null {
  switch (c.kind) {
    case 'resize':
      return c.antialias
        ? (s, g) => resizePil(s, g, c.size, c.size, c.interp)
        : (s, g) => resizeTensor(s, g, c.size, c.size, c.interp as 'bilinear' | 'bicubic');
    case 'center-crop':
      return (s, g) => centerCrop(s, g, c.size);
    case 'rrc':
      // one draw for the whole run; the per-epoch crops are the training loop's (epochCrops)
      return c.epoch ? null : rrcOf(c, new Rng(0));
    default:
      return null;
  }
}

/** RandomResizedCrop to S×S, its boxes drawn from `rng` in image order. */
function rrcOf(c: Extract<Countermeasure, { kind: 'rrc' }>, rng: Rng): Reshape {
  return (s, g) => {
    const b = randomResizedCropParams(g.height, g.width, [c.minScale, 1], [3 / 4, 4 / 3], rng);
    return resizePil(
      crop(s, g, b),
      { ...g, height: b.height, width: b.width },
      c.size,
      c.size,
      c.interp,
    );
  };
}

/** The generator of epoch `epoch`'s crops in a run seeded `seed` (apart from the loop's own). */
export function epochCropRng(seed: number, epoch: number): Rng {
  return new Rng(seed * 1_000_003 + epoch + 1 + 2 ** 40);
}

/**
 * The per-epoch countermeasure named by `name` (`rrc:S…:epoch`), or null for the others: the S×S
 * size the model is built for, and the training images of one epoch, every image cropped afresh
 * (boxes from {@link epochCropRng}, in image order), or null when `shouldStop` said yes.
 */
export function epochCrops(name: string | null | undefined): {
  size: number;
  images: (
    ds: Dataset,
    seed: number,
    epoch: number,
    shouldStop?: () => boolean,
  ) => Promise<Dataset | null>;
} | null {
  if (!name) return null;
  const c = parseCountermeasure(name);
  if (c.kind !== 'rrc' || !c.epoch) return null;
  return {
    size: c.size,
    images: (ds, seed, epoch, shouldStop) =>
      unlessStopped(
        reshaped(ds, c.size, rrcOf(c, epochCropRng(seed, epoch)), undefined, shouldStop),
      ),
  };
}

/** The evaluation transform a trainer pairs with `c` for the test split (null: none). */
export function evalTransform(c: Countermeasure): Countermeasure | null {
  switch (c.kind) {
    case 'resize':
    case 'center-crop':
      return c;
    case 'rrc':
      return { kind: 'resize', size: c.size, interp: c.interp, antialias: true };
    default:
      return null;
  }
}

/** Runs a resizing transform over every image of `ds` into a new S×S dataset. */
async function reshaped(
  ds: Dataset,
  size: number,
  f: Reshape,
  onImage?: (done: number, total: number) => void,
  shouldStop?: () => boolean,
): Promise<Dataset> {
  const n = ds.labels.length;
  const per = size * size * ds.channels;
  const out = new Uint8Array(n * per);
  const inSize = imageSize(ds);
  for (let i = 0; i < n; i++) {
    if (i % 200 === 199) await breathe(shouldStop);
    out.set(f(ds.images.subarray(i * inSize, (i + 1) * inSize), ds), i * per);
    if (onImage && (i % 1000 === 999 || i === n - 1)) onImage(i + 1, n);
  }
  return { ...ds, height: size, width: size, images: out };
}

/** Runs a per-image transform over every image of `ds` into a new dataset. */
async function perImage(
  ds: Dataset,
  f: (src: Uint8Array, dst: Uint8Array) => void,
  onImage?: (done: number, total: number) => void,
  shouldStop?: () => boolean,
): Promise<Dataset> {
  const size = imageSize(ds);
  const n = ds.labels.length;
  const out = new Uint8Array(n * size);
  for (let i = 0; i < n; i++) {
    if (i % 500 === 499) await breathe(shouldStop);
    f(ds.images.subarray(i * size, (i + 1) * size), out.subarray(i * size, (i + 1) * size));
    if (onImage && (i % 1000 === 999 || i === n - 1)) onImage(i + 1, n);
  }
  return { ...ds, images: out };
}

/**
 * Applies `c` to a copy of the training set (the input is not modified). The work gives the
 * event loop a turn every few hundred images (a signal's handler runs at once) and asks
 * `shouldStop`: when it says yes, the result is null.
 */
export async function applyCountermeasure(
  ds: Dataset,
  c: Countermeasure,
  onImage?: (done: number, total: number) => void,
  shouldStop?: () => boolean,
): Promise<Dataset | null> {
  return unlessStopped(transformed(ds, c, onImage, shouldStop));
}

async function transformed(
  ds: Dataset,
  c: Countermeasure,
  onImage?: (done: number, total: number) => void,
  shouldStop?: () => boolean,
): Promise<Dataset> {
  const reshape = reshapeOf(c);
  if (reshape && 'size' in c) return reshaped(ds, c.size, reshape, onImage, shouldStop);
  switch (c.kind) {
    case 'none':
    case 'resize':
    case 'center-crop':
    case 'rrc':
      return ds;
    case 'grayscale':
      return perImage(ds, (s, d) => grayscale(s, d, ds.channels), onImage, shouldStop);
    case 'bdr':
      return perImage(ds, (s, d) => bitDepth(s, d, c.bits), onImage, shouldStop);
    case 'median':
      return perImage(ds, (s, d) => medianFilter(s, d, ds, c.size), onImage, shouldStop);
    case 'mean':
      return perImage(ds, (s, d) => boxFilter(s, d, ds, c.size), onImage, shouldStop);
    case 'gaussian':
      return perImage(ds, (s, d) => gaussianFilter(s, d, ds, c.sigma, c.size), onImage, shouldStop);
    case 'jpeg': {
      const out = new Uint8Array(ds.images.length);
      const n = ds.labels.length;
      await jpegRoundTrip(ds.images, out, ds, n, c.quality, onImage, shouldStop);
      return { ...ds, images: out };
    }
    case 'orthogonal-projection': {
      const n = ds.labels.length;
      const w = await fitLinear(ds.images, ds.labels, ds, ds.classNames.length, { shouldStop });
      const out = new Uint8Array(ds.images.length);
      await projectOut(ds.images, out, orthonormalRows(w, ds.classNames.length), n, shouldStop);
      onImage?.(n, n);
      return { ...ds, images: out };
    }
  }
}
