/**
 * Resizing and cropping as a trainer's torchvision pipeline does it on PIL images (the default
 * path: `ImageFolder` loads PIL images, `Resize`, `CenterCrop` and `RandomResizedCrop` call PIL),
 * reproducing Pillow 9's bytes (test/resize.test.ts compares them with PIL and torchvision):
 *
 * - {@link resizePil}: `Image.resize((W, H), filter)`. Bilinear, bicubic and lanczos are PIL's
 *   separable convolution (Resample.c): the filter stretched by the scale when shrinking, so the
 *   result is always antialiased; coefficients in 22-bit fixed point, horizontal pass first, each
 *   pass rounded to uint8. Nearest is PIL's affine scaling, no filtering.
 * - {@link resizeTensor}: torchvision's tensor path with `antialias=False` (`F.interpolate`,
 *   `align_corners=False`): only the 2 (bilinear) or 4 (bicubic, A = −0.75) nearest source pixels,
 *   no prefilter, rounded half to even. Computed in double where torch uses float32, so a value
 *   can differ by 1 where the float32 result sits at a rounding boundary.
 * - {@link centerCrop} and {@link randomResizedCropParams}: torchvision's `CenterCrop` and
 *   `RandomResizedCrop.get_params`, the draws from a seeded {@link Random}.
 */
import type { Geometry } from './pil.js';
import type { Random } from './random.js';

export const INTERPOLATIONS = ['bilinear', 'bicubic', 'nearest', 'lanczos'] as const;
export type Interpolation = (typeof INTERPOLATIONS)[number];

/** PIL's filters and their supports (Resample.c). */
const FILTERS: Record<
  Exclude<Interpolation, 'nearest'>,
  { support: number; f: (x: number) => number }
> = {
  bilinear: {
    support: 1,
    f: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: {
    support: 3,
    f: (x) => {
      const sinc = (v: number) => (v === 0 ? 1 : Math.sin(v * Math.PI) / (v * Math.PI));
      return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;

/** One output position's source span and fixed-point weights. */
export interface Taps {
  /** First source index per output index. */
  start: Int32Array;
  /** Number of source indices per output index. */
  count: Int32Array;
  /** ksize weights per output index (fixed point, 2^22 = 1). */
  weights: Int32Array;
  ksize: number;
}

/** PIL's precompute_coeffs + normalize_coeffs_8bpc for one axis, box [0, inSize). */
export function resampleTaps(inSize: number, outSize: number, interp: Interpolation): Taps {
  if (interp === 'nearest') throw new Error('nearest has no taps');
  const filter = FILTERS[interp];
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = filter.f((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] = Math.trunc(
        w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS),
      );
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, ksize };
}

function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** PIL's `Image.resize((outW, outH), filter)` of one H×W×C uint8 image. */
export function resizePil(
  src: Uint8Array,
  g: Geometry,
  outH: number,
  outW: number,
  interp: Interpolation,
): Uint8Array {
  const { height: H, width: W, channels: C } = g;
  if (H === outH && W === outW) return src.slice();
  if (interp === 'nearest') return resizeNearestPil(src, g, outH, outW);
  let img = src;
  let w = W;
  if (outW !== W) {
    const t = resampleTaps(W, outW, interp);
    const tmp = new Uint8Array(H * outW * C);
    for (let y = 0; y < H; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = t.start[xx];
        const n = t.count[xx];
        const kb = xx * t.ksize;
        for (let c = 0; c < C; c++) {
          let s = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < n; x++) s += img[(y * W + xmin + x) * C + c] * t.weights[kb + x];
          tmp[(y * outW + xx) * C + c] = clip8(s);
        }
      }
    }
    img = tmp;
    w = outW;
  }
  if (outH !== H) {
    const t = resampleTaps(H, outH, interp);
    const out = new Uint8Array(outH * w * C);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = t.start[yy];
      const n = t.count[yy];
      const kb = yy * t.ksize;
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < C; c++) {
          let s = 1 << (PRECISION_BITS - 1);
          for (let y = 0; y < n; y++) s += img[((ymin + y) * w + x) * C + c] * t.weights[kb + y];
          out[(yy * w + x) * C + c] = clip8(s);
        }
      }
    }
    img = out;
  }
  return img;
}

/** PIL's COORD(v): −1 for negative coordinates, else the integer part. */
const coord = (v: number) => (v < 0 ? -1 : Math.trunc(v));

/** PIL's nearest resize: ImagingScaleAffine with a = in/out, coordinates accumulated. */
function resizeNearestPil(src: Uint8Array, g: Geometry, outH: number, outW: number): Uint8Array {
  const { height: H, width: W, channels: C } = g;
  const out = new Uint8Array(outH * outW * C);
  const a = W / outW;
  const e = H / outH;
  const xin = new Int32Array(outW);
  let xo = a * 0.5;
  for (let x = 0; x < outW; x++) {
    xin[x] = Math.min(coord(xo), W - 1);
    xo += a;
  }
  let yo = e * 0.5;
  for (let y = 0; y < outH; y++) {
    const yin = Math.min(coord(yo), H - 1);
    for (let x = 0; x < outW; x++) {
      const s = (yin * W + xin[x]) * C;
      const o = (y * outW + x) * C;
      for (let c = 0; c < C; c++) out[o + c] = src[s + c];
    }
    yo += e;
  }
  return out;
}

/** torch's round(): half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torch's cubic convolution weights (A = −0.75) for fraction t. */
function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const c1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const c2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
}

/**
 * torchvision's tensor resize with antialias=False (`F.interpolate`, align_corners=False) of one
 * H×W×C uint8 image: bilinear or bicubic; bicubic clamped to 0..255 before rounding.
 */
export function resizeTensor(
  src: Uint8Array,
  g: Geometry,
  outH: number,
  outW: number,
  interp: 'bilinear' | 'bicubic',
): Uint8Array {
  const { height: H, width: W, channels: C } = g;
  const out = new Uint8Array(outH * outW * C);
  const sy = H / outH;
  const sx = W / outW;
  const at = (y: number, x: number, c: number) =>
    src[(Math.min(Math.max(y, 0), H - 1) * W + Math.min(Math.max(x, 0), W - 1)) * C + c];
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < C; c++) {
        let v: number;
        if (interp === 'bilinear') {
          const fy = Math.max((y + 0.5) * sy - 0.5, 0);
          const fx = Math.max((x + 0.5) * sx - 0.5, 0);
          const y0 = Math.floor(fy);
          const x0 = Math.floor(fx);
          const ly = fy - y0;
          const lx = fx - x0;
          const y1 = Math.min(y0 + 1, H - 1);
          const x1 = Math.min(x0 + 1, W - 1);
          v =
            (1 - ly) * ((1 - lx) * at(y0, x0, c) + lx * at(y0, x1, c)) +
            ly * ((1 - lx) * at(y1, x0, c) + lx * at(y1, x1, c));
        } else {
          const fy = (y + 0.5) * sy - 0.5;
          const fx = (x + 0.5) * sx - 0.5;
          const y0 = Math.floor(fy);
          const x0 = Math.floor(fx);
          const wy = cubicWeights(fy - y0);
          const wx = cubicWeights(fx - x0);
          v = 0;
          for (let i = 0; i < 4; i++) {
            let row = 0;
            for (let j = 0; j < 4; j++) row += wx[j] * at(y0 - 1 + i, x0 - 1 + j, c);
            v += wy[i] * row;
          }
          v = Math.min(Math.max(v, 0), 255);
        }
        out[(y * outW + x) * C + c] = Math.min(Math.max(roundHalfEven(v), 0), 255);
      }
    }
  }
  return out;
}

/** Python's round(): half to even. */
const pyRound = roundHalfEven;

/** A crop box: top row, left column, height, width. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/**
 * torchvision's `CenterCrop((h, w))` box: top = round((H − h) / 2), left = round((W − w) / 2)
 * (Python's round, half to even); negative when the crop is larger than the image (then padded).
 */
export function centerCropBox(H: number, W: number, h: number, w: number): CropBox {
  return { top: pyRound((H - h) / 2), left: pyRound((W - w) / 2), height: h, width: w };
}

/** The box cut out of one image; parts outside the image are 0 (torchvision pads with 0). */
export function crop(src: Uint8Array, g: Geometry, b: CropBox): Uint8Array {
  const { height: H, width: W, channels: C } = g;
  const out = new Uint8Array(b.height * b.width * C);
  for (let y = 0; y < b.height; y++) {
    const sy = b.top + y;
    if (sy < 0 || sy >= H) continue;
    for (let x = 0; x < b.width; x++) {
      const sx = b.left + x;
      if (sx < 0 || sx >= W) continue;
      const s = (sy * W + sx) * C;
      const o = (y * b.width + x) * C;
      for (let c = 0; c < C; c++) out[o + c] = src[s + c];
    }
  }
  return out;
}

/** torchvision's `CenterCrop(size)` of one image to size×size. */
export function centerCrop(src: Uint8Array, g: Geometry, size: number): Uint8Array {
  return crop(src, g, centerCropBox(g.height, g.width, size, size));
}

/**
 * torchvision's `RandomResizedCrop.get_params(img, scale, ratio)`: up to 10 tries of an area
 * fraction uniform in [scale₀, scale₁) and a log-uniform aspect ratio in [ratio₀, ratio₁) (both
 * drawn in float32 as torch does), w = round(√(area·r)), h = round(√(area/r)); the first that fits
 * is placed uniformly; otherwise the central crop clamped to the ratio range.
 */
export function randomResizedCropParams(
  H: number,
  W: number,
  scale: [number, number],
  ratio: [number, number],
  rnd: Random,
): CropBox {
  const f = Math.fround;
  const area = H * W;
  const lr0 = f(Math.log(f(ratio[0])));
  const lr1 = f(Math.log(f(ratio[1])));
  const uniform = (lo: number, hi: number) => f(lo + (hi - lo) * rnd.uniform());
  for (let i = 0; i < 10; i++) {
    const targetArea = area * uniform(scale[0], scale[1]);
    const aspect = f(Math.exp(uniform(lr0, lr1)));
    const w = pyRound(Math.sqrt(targetArea * aspect));
    const h = pyRound(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const top = rnd.int(H - h + 1);
      const left = rnd.int(W - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = W / H;
  let w: number;
  let h: number;
  if (inRatio < Math.min(...ratio)) {
    w = W;
    h = pyRound(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    h = H;
    w = pyRound(h * Math.max(...ratio));
  } else {
    w = W;
    h = H;
  }
  return { top: Math.floor((H - h) / 2), left: Math.floor((W - w) / 2), height: h, width: w };
}
