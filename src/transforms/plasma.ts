/**
 * Plasma fractals (diamond–square) and the plasma brightness and contrast of UEraser (Qin et al.
 * 2023), following kornia's `diamond_square`, `RandomPlasmaBrightness` and `RandomPlasmaContrast`:
 *
 * - the map: a 3×L seed (kornia's `_diamond_square_seed`: random corners, averaged centres and
 *   edges, all divided by 3), then `depth` doublings; doubling with scale s (s = roughness^level)
 *   sets each new centre to (1−s)·(mean of its 4 diagonal neighbours) + s·u and then each new edge
 *   point to (1−s)·(mean of its 4 axis neighbours, mirrored at the border, ×4/3 on the border)
 *   + s·u, u uniform in [0, 1); the result is cut to H×W. One map per channel.
 * - brightness: x + intensity·(2·map − 1), contrast: (x − ½)·4·map + ½, both clamped to [0, 1],
 *   on x = v/255.
 *
 * The uniform numbers come from our generator, not torch's, so maps match kornia in distribution,
 * not value; the test replays the algorithm in torch with our numbers.
 */
import type { Random } from './random.js';

/** A diamond–square plasma map of H×W values (row-major), roughness in (0, 1). */
export function diamondSquare(h: number, w: number, roughness: number, rnd: Random): Float64Array {
  const p2 = (n: number) => 2 ** Math.ceil(Math.log2(n - 1)) + 1;
  const [ph, pw] = [p2(h), p2(w)];
  const depth = Math.min(Math.log2(ph - 1) - 1, Math.log2(pw - 1) - 1);
  const sh = (ph - 1) / 2 ** depth + 1;
  const sw = (pw - 1) / 2 ** depth + 1;
  let img = seed(sh, sw, rnd);
  let [ih, iw] = [sh, sw];
  let scale = 1;
  for (let level = 0; level < depth; level++) {
    scale *= roughness;
    img = refine(img, ih, iw, scale, rnd);
    [ih, iw] = [2 * ih - 1, 2 * iw - 1];
  }
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = img[y * iw + x];
  return out;
}

/** kornia's seed: 3 rows × L columns (transposed when the height is the longer side). */
function seed(sh: number, sw: number, rnd: Random): Float64Array {
  const transpose = sh !== 3;
  const L = transpose ? sh : sw;
  const r = [new Float64Array(L), new Float64Array(L), new Float64Array(L)];
  for (const row of r) for (let j = 0; j < L; j++) row[j] = rnd.uniform();
  for (const row of [0, 2]) for (let j = 0; j < L; j += 2) r[row][j] = rnd.uniform();
  for (let j = 1; j < L; j += 2)
    r[1][j] = (r[0][j - 1] + r[2][j - 1] + r[0][j + 1] + r[2][j + 1]) / 4;
  if (L > 3) {
    const old = r[1].slice();
    for (let j = 2; j < L - 3; j += 2) r[1][j] = (r[0][j] + r[2][j] + old[j - 2] + old[j]) / 4;
  }
  const t1 = r[2][0];
  r[1][0] = r[0][0] + r[1][1] + t1;
  r[1][L - 1] = r[2][L - 1] + r[1][L - 2] + t1;
  for (let j = 1; j < L; j += 2) {
    r[0][j] = r[0][j - 1] + r[0][j + 1] + r[1][j];
    r[2][j] = r[2][j - 1] + r[2][j + 1] + r[1][j];
  }
  const out = new Float64Array(3 * L);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < L; j++) out[transpose ? j * 3 + i : i * L + j] = r[i][j] / 3;
  return out;
}

/**
 * One diamond step and one square step: h×w → (2h−1)×(2w−1). Plain loops with the mirror folded
 * into precomputed neighbour indices (closures and `Float64Array.from` made this a millisecond an
 * image); the sums are taken in the same order, so the maps are the same to the bit.
 */
function refine(img: Float64Array, h: number, w: number, s: number, rnd: Random): Float64Array {
  const H = 2 * h - 1;
  const W = 2 * w - 1;
  const out = new Float64Array(H * W);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[2 * y * W + 2 * x] = img[y * w + x];
  const u = new Float64Array(H * W);
  for (let k = 0; k < H * W; k++) u[k] = rnd.uniform() * s;
  // Diamond: odd (y, x) are inner points, so their diagonal neighbours need no mirror.
  for (let y = 1; y < H; y += 2)
    for (let x = 1; x < W; x += 2) {
      const up = (y - 1) * W;
      const dn = (y + 1) * W;
      const d = (out[up + x - 1] + out[up + x + 1] + out[dn + x - 1] + out[dn + x + 1]) / 4;
      if (d > 0) out[y * W + x] += (1 - s) * d + u[y * W + x];
    }
  // Square: axis neighbours mirrored at the border (−1 → 1, n → n − 2).
  const sq = new Float64Array(H * W);
  for (let y = 0; y < H; y++) {
    const up = (y === 0 ? 1 : y - 1) * W;
    const dn = (y === H - 1 ? H - 2 : y + 1) * W;
    for (let x = (y + 1) % 2; x < W; x += 2) {
      const l = x === 0 ? 1 : x - 1;
      const r = x === W - 1 ? W - 2 : x + 1;
      const border = y === 0 || y === H - 1 || x === 0 || x === W - 1;
      sq[y * W + x] =
        ((out[up + x] + out[dn + x] + out[y * W + l] + out[y * W + r]) / 4) * (border ? 4 / 3 : 1);
    }
  }
  for (let k = 0; k < H * W; k++) if (sq[k] > 0) out[k] += u[k] + (1 - s) * sq[k];
  return out;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** x ↦ clamp(x + intensity·(2·map − 1)) with one map per channel; x is H×W×C in [0, 1]. */
export function plasmaBrightness(
  x: Float64Array,
  h: number,
  w: number,
  c: number,
  roughness: number,
  intensity: number,
  rnd: Random,
): void {
  for (let ch = 0; ch < c; ch++) {
    const map = diamondSquare(h, w, roughness, rnd);
    for (let p = 0; p < h * w; p++)
      x[p * c + ch] = clamp01(x[p * c + ch] + intensity * (2 * map[p] - 1));
  }
}

/** x ↦ clamp((x − ½)·4·map + ½) with one map per channel; x is H×W×C in [0, 1]. */
export function plasmaContrast(
  x: Float64Array,
  h: number,
  w: number,
  c: number,
  roughness: number,
  rnd: Random,
): void {
  for (let ch = 0; ch < c; ch++) {
    const map = diamondSquare(h, w, roughness, rnd);
    for (let p = 0; p < h * w; p++)
      x[p * c + ch] = clamp01((x[p * c + ch] - 0.5) * 4 * map[p] + 0.5);
  }
}
