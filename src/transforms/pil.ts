/**
 * PIL's point, colour and geometric operations on uint8 H×W×C images, in plain loops, reproducing
 * PIL 9's bytes (the tests compare them with PIL): the building blocks of RandAugment and
 * TrivialAugment (src/train/augment.ts, ./trivial-augment.ts).
 */

/** Image geometry (the fields of a Dataset that matter to a transform). */
export interface Geometry {
  height: number;
  width: number;
  channels: number;
}

/** An affine map's six coefficients, as PIL's `Image.transform(…, AFFINE, …)` takes them. */
export type AffineMatrix = [number, number, number, number, number, number];

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** PIL's fixed-point luma, L = (19595 R + 38470 G + 7471 B + 2^15) >> 16. */
export function luma(img: Uint8Array, o: number, C: number): number {
  if (C !== 3) return img[o];
  return (img[o] * 19595 + img[o + 1] * 38470 + img[o + 2] * 7471 + 0x8000) >> 16;
}

/**
 * PIL's `Image.blend(degenerate, img, f)` in place into img: in C `float` arithmetic,
 * d + f·(v − d), truncated, clipped to 0..255.
 */
export function blendInto(img: Uint8Array, degenerate: Uint8Array | number, f: number): void {
  const f32 = Math.fround(f);
  for (let k = 0; k < img.length; k++) {
    const d = typeof degenerate === 'number' ? degenerate : degenerate[k];
    const v = Math.fround(d + Math.fround(f32 * (img[k] - d)));
    img[k] = v <= 0 ? 0 : v >= 255 ? 255 : v | 0;
  }
}

export function applyLutPerChannel(
  img: Uint8Array,
  C: number,
  lutOf: (hist: Int32Array) => Uint8Array,
) {
  for (let c = 0; c < C; c++) {
    const hist = new Int32Array(256);
    for (let k = c; k < img.length; k += C) hist[img[k]]++;
    const lut = lutOf(hist);
    for (let k = c; k < img.length; k += C) img[k] = lut[img[k]];
  }
}

export function applyLut(img: Uint8Array, f: (v: number) => number): void {
  const lut = Uint8Array.from({ length: 256 }, (_, v) => f(v));
  for (let k = 0; k < img.length; k++) img[k] = lut[img[k]];
}

export const IDENTITY_LUT = Uint8Array.from({ length: 256 }, (_, v) => v);

/** PIL's COORD(v): −1 for negative coordinates, else the integer part. */
function coord(v: number): number {
  return v < 0 ? -1 : Math.trunc(v);
}

/**
 * Inverse-mapped affine transform with nearest-neighbour sampling, exactly as PIL's
 * `Image.transform(size, AFFINE, (a, b, c, d, e, f), NEAREST, fillcolor=fill)`: output pixel
 * (x, y) takes input pixel (a(x+½) + b(y+½) + c, d(x+½) + e(y+½) + f), integer parts, or `fill`
 * when outside the image. The coordinates are computed as PIL's C code does (pure translations
 * and scalings by tabulation, other maps in 16.16 fixed point, stepped by additions), so the
 * choice of pixel at exact boundaries is PIL's too.
 */
export function affine(
  src: Uint8Array,
  dst: Uint8Array,
  g: Geometry,
  m: readonly number[],
  fill: number,
): void {
  const { height: H, width: W, channels: C } = g;
  const [a, b, c, d, e, f] = m;
  const put = (o: number, xin: number, yin: number) => {
    if (xin >= 0 && xin < W && yin >= 0 && yin < H) {
      const s = (yin * W + xin) * C;
      for (let ch = 0; ch < C; ch++) dst[o + ch] = src[s + ch];
    } else {
      for (let ch = 0; ch < C; ch++) dst[o + ch] = fill;
    }
  };
  if (b === 0 && d === 0) {
    // ImagingScaleAffine: tabulated columns, rows accumulated.
    const xin = new Int32Array(W);
    let xo = c + a * 0.5;
    for (let x = 0; x < W; x++) {
      xin[x] = coord(xo);
      xo += a;
    }
    let yo = f + e * 0.5;
    for (let y = 0; y < H; y++) {
      const yin = coord(yo);
      for (let x = 0; x < W; x++) put((y * W + x) * C, xin[x], yin);
      yo += e;
    }
    return;
  }
  // Within ±32768 at the corners, PIL works in 16.16 fixed point: coefficients rounded once,
  // coordinates advanced by integer additions, pixel = coordinate >> 16.
  const fits = (x: number, y: number) =>
    Math.abs(x * a + y * b + c) < 32768 && Math.abs(x * d + y * e + f) < 32768;
  if (fits(0, 0) && fits(W, H) && fits(0, H) && fits(W, 0)) {
    const fix = (v: number) => Math.floor(v * 65536 + 0.5);
    const a0 = fix(a);
    const a1 = fix(b);
    const a3 = fix(d);
    const a4 = fix(e);
    let a2 = fix(c + a * 0.5 + b * 0.5);
    let a5 = fix(f + d * 0.5 + e * 0.5);
    for (let y = 0; y < H; y++) {
      let xx = a2;
      let yy = a5;
      for (let x = 0; x < W; x++) {
        put((y * W + x) * C, xx >> 16, yy >> 16);
        xx += a0;
        yy += a3;
      }
      a2 += a1;
      a5 += a4;
    }
    return;
  }
  // Otherwise, floating point with the coordinates accumulated the same way.
  let xo = c + b * 0.5 + a * 0.5;
  let yo = f + e * 0.5 + d * 0.5;
  for (let y = 0; y < H; y++) {
    let xx = xo;
    let yy = yo;
    for (let x = 0; x < W; x++) {
      put((y * W + x) * C, coord(xx), coord(yy));
      xx += a;
      yy += d;
    }
    xo += b;
    yo += e;
  }
}

/** Python's round(v, 15) (correctly rounded to 15 decimals, back to the nearest double). */
function round15(v: number): number {
  return Number(v.toFixed(15));
}

/** PIL's `Image.rotate(degrees)` matrix (about the centre, no expansion). */
export function rotationMatrix(degrees: number, g: Geometry): AffineMatrix {
  const angle = -(((degrees % 360) + 360) % 360) * (Math.PI / 180);
  const a = round15(Math.cos(angle));
  const b = round15(Math.sin(angle));
  const d = round15(-Math.sin(angle));
  const e = round15(Math.cos(angle));
  const cx = g.width / 2;
  const cy = g.height / 2;
  return [a, b, a * -cx + b * -cy + cx, d, e, d * -cx + e * -cy + cy];
}

/** 255 − v. */
export function invert(img: Uint8Array): void {
  applyLut(img, (v) => 255 - v);
}

/** PIL `ImageOps.autocontrast` per channel: stretch min..max to 0..255 (cutoff 0). */
export function autocontrast(img: Uint8Array, C: number): void {
  applyLutPerChannel(img, C, (hist) => {
    let lo = 0;
    while (lo < 256 && hist[lo] === 0) lo++;
    let hi = 255;
    while (hi >= 0 && hist[hi] === 0) hi--;
    if (hi <= lo) return IDENTITY_LUT;
    const scale = 255 / (hi - lo);
    const offset = -lo * scale;
    return Uint8Array.from({ length: 256 }, (_, v) =>
      clamp(Math.trunc(v * scale + offset), 0, 255),
    );
  });
}

/** PIL `ImageOps.equalize` per channel (its exact lookup table). */
export function equalize(img: Uint8Array, C: number): void {
  applyLutPerChannel(img, C, (hist) => {
    let last = 255;
    while (last >= 0 && hist[last] === 0) last--;
    let nonzero = 0;
    let total = 0;
    for (let v = 0; v < 256; v++) {
      if (hist[v] > 0) nonzero++;
      total += hist[v];
    }
    if (nonzero <= 1) return IDENTITY_LUT;
    const step = Math.floor((total - hist[last]) / 255);
    if (step === 0) return IDENTITY_LUT;
    const lut = new Uint8Array(256);
    let acc = Math.floor(step / 2);
    for (let v = 0; v < 256; v++) {
      lut[v] = Math.min(255, Math.floor(acc / step));
      acc += hist[v];
    }
    return lut;
  });
}

/** PIL `ImageOps.solarize`: values ≥ threshold become 255 − v. */
export function solarize(img: Uint8Array, threshold: number): void {
  applyLut(img, (v) => (v < threshold ? v : 255 - v));
}

/** PIL `ImageOps.posterize`: keep the `bits` most significant bits (v & ~(2^(8−bits) − 1)). */
export function posterize(img: Uint8Array, bits: number): void {
  const mask = ~((1 << (8 - bits)) - 1) & 0xff;
  applyLut(img, (v) => v & mask);
}

/** PIL `ImageEnhance.Color(img).enhance(f)`: blend with the luma image (identity for C = 1). */
export function color(img: Uint8Array, C: number, f: number): void {
  if (C !== 3) return;
  const gray = new Uint8Array(img.length);
  for (let o = 0; o < img.length; o += 3) gray.fill(luma(img, o, 3), o, o + 3);
  blendInto(img, gray, f);
}

/** PIL `ImageEnhance.Contrast(img).enhance(f)`: blend with the rounded mean luma. */
export function contrast(img: Uint8Array, g: Geometry, f: number): void {
  const C = g.channels;
  let sum = 0;
  for (let o = 0; o < img.length; o += C) sum += luma(img, o, C);
  blendInto(img, Math.floor(sum / (g.height * g.width) + 0.5), f);
}

/** PIL `ImageEnhance.Brightness(img).enhance(f)`: blend with black. */
export function brightness(img: Uint8Array, f: number): void {
  blendInto(img, 0, f);
}

/**
 * PIL `ImageEnhance.Sharpness(img).enhance(f)`: blend with the SMOOTH-filtered image (kernel
 * 1 1 1 / 1 5 1 / 1 1 1, divided by 13, rounded), whose border pixels are the image's own.
 */
export function sharpness(img: Uint8Array, g: Geometry, f: number): void {
  const { height: H, width: W, channels: C } = g;
  const smooth = img.slice();
  for (let y = 1; y < H - 1; y++)
    for (let x = 1; x < W - 1; x++)
      for (let c = 0; c < C; c++) {
        let s = 4 * img[(y * W + x) * C + c];
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) s += img[((y + dy) * W + x + dx) * C + c];
        smooth[(y * W + x) * C + c] = Math.min(255, Math.round(s / 13));
      }
  blendInto(img, smooth, f);
}
