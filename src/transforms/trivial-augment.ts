/**
 * TrivialAugment (Müller & Hutter 2021) with torchvision's `TrivialAugmentWide` ops and magnitude
 * bins, on a uint8 H×W×C image in place: draw one op uniformly from {@link TA_OPS}, one of its 31
 * magnitude bins uniformly, and a sign (p = ½) for the signed ops, then apply it as torchvision
 * applies it to a PIL image (fill 0, nearest neighbour). With the same op and magnitude the bytes
 * equal torchvision's (the test compares every op at several magnitudes).
 *
 * Bins (torch.linspace in float32, 31 steps): shear 0–0.99, translate 0–32 px (truncated to an
 * integer), rotate 0–135°, brightness/color/contrast/sharpness factor 1 + (0–0.99), posterize
 * 8 − round(i/5) bits, solarize threshold 255–0; identity, autocontrast and equalize take none.
 */
import * as pil from './pil.js';
import type { AffineMatrix, Geometry } from './pil.js';
import type { Random } from './random.js';

export const TA_OPS = [
  'identity',
  'shear_x',
  'shear_y',
  'translate_x',
  'translate_y',
  'rotate',
  'brightness',
  'color',
  'contrast',
  'sharpness',
  'posterize',
  'solarize',
  'autocontrast',
  'equalize',
] as const;

export type TaOp = (typeof TA_OPS)[number];

export const TA_BINS = 31;

/** torch.linspace(start, end, steps) in float32, as torch's CPU kernel computes it. */
export function linspace32(start: number, end: number, steps: number): Float32Array {
  const step = Math.fround((end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  return Float32Array.from({ length: steps }, (_, i) =>
    i < half
      ? Math.fround(start + Math.fround(step * i))
      : Math.fround(end - Math.fround(step * (steps - i - 1))),
  );
}

/** The magnitude of `op` at bin i (0..30), unsigned; null for ops without magnitudes. */
export function taMagnitude(op: TaOp, i: number): number | null {
  switch (op) {
    case 'shear_x':
    case 'shear_y':
    case 'brightness':
    case 'color':
    case 'contrast':
    case 'sharpness':
      return linspace32(0, 0.99, TA_BINS)[i];
    case 'translate_x':
    case 'translate_y':
      return linspace32(0, 32, TA_BINS)[i];
    case 'rotate':
      return linspace32(0, 135, TA_BINS)[i];
    case 'posterize':
      return 8 - Math.round(Math.fround(i / ((TA_BINS - 1) / 6)));
    case 'solarize':
      return linspace32(255, 0, TA_BINS)[i];
    default:
      return null;
  }
}

const SIGNED: ReadonlySet<TaOp> = new Set([
  'shear_x',
  'shear_y',
  'translate_x',
  'translate_y',
  'rotate',
  'brightness',
  'color',
  'contrast',
  'sharpness',
]);

const RAD_TO_DEG = 180 / Math.PI;
const DEG_TO_RAD = Math.PI / 180;

/** Applies `op` with the signed `magnitude` as torchvision's `_apply_op` does on a PIL image. */
export function applyTaOp(
  op: TaOp,
  img: Uint8Array,
  g: Geometry,
  magnitude: number,
  scratch?: Uint8Array,
): void {
  const geometric = (m: AffineMatrix) => {
    const buf = scratch ?? new Uint8Array(img.length);
    pil.affine(img, buf, g, m, 0);
    img.set(buf.subarray(0, img.length));
  };
  // torchvision passes shear in degrees, math.degrees(math.atan(m)), and takes its tangent back.
  const shear = () => Math.tan(Math.atan(magnitude) * RAD_TO_DEG * DEG_TO_RAD);
  switch (op) {
    case 'identity':
      return;
    case 'shear_x':
      geometric([1, shear(), 0, 0, 1, 0]);
      return;
    case 'shear_y':
      geometric([1, 0, 0, shear(), 1, 0]);
      return;
    case 'translate_x':
      geometric([1, 0, -Math.trunc(magnitude), 0, 1, 0]);
      return;
    case 'translate_y':
      geometric([1, 0, 0, 0, 1, -Math.trunc(magnitude)]);
      return;
    case 'rotate':
      if (magnitude !== 0) geometric(pil.rotationMatrix(magnitude, g));
      return;
    case 'brightness':
      pil.brightness(img, 1 + magnitude);
      return;
    case 'color':
      pil.color(img, g.channels, 1 + magnitude);
      return;
    case 'contrast':
      pil.contrast(img, g, 1 + magnitude);
      return;
    case 'sharpness':
      pil.sharpness(img, g, 1 + magnitude);
      return;
    case 'posterize':
      pil.posterize(img, Math.trunc(magnitude));
      return;
    case 'solarize':
      pil.solarize(img, magnitude);
      return;
    case 'autocontrast':
      pil.autocontrast(img, g.channels);
      return;
    case 'equalize':
      pil.equalize(img, g.channels);
      return;
  }
}

/** One TrivialAugmentWide draw applied to `img` in place; returns what was applied. */
export function trivialAugment(
  img: Uint8Array,
  g: Geometry,
  rnd: Random,
  scratch?: Uint8Array,
): { op: TaOp; magnitude: number } {
  const op = TA_OPS[rnd.int(TA_OPS.length)];
  let magnitude = taMagnitude(op, rnd.int(TA_BINS)) ?? 0;
  if (SIGNED.has(op) && rnd.uniform() < 0.5) magnitude = -magnitude;
  applyTaOp(op, img, g, magnitude, scratch);
  return { op, magnitude };
}
