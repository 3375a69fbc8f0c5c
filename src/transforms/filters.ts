/**
 * Neighbourhood filters on uint8 H×W×C images, per channel, with the border replicated (a pixel
 * outside the image takes the value of the nearest edge pixel: OpenCV's BORDER_REPLICATE, the
 * border `cv2.medianBlur` always uses). Each is checked against OpenCV on real CIFAR-10 images.
 *
 * - {@link medianFilter}: the median of the K×K window (K odd), `cv2.medianBlur(img, K)`.
 * - {@link boxFilter}: the mean of the K×K window rounded to the nearest integer (the sum is an
 *   integer, so no ties arise for odd K), `cv2.blur(img, (K, K), borderType=BORDER_REPLICATE)`.
 * - {@link gaussianFilter}: OpenCV's bit-exact 8-bit Gaussian: the 1-D kernel
 *   exp(−(i − (K−1)/2)² / 2σ²) normalised, quantised to multiples of 1/256 by error diffusion from
 *   the ends with the centre taking the remainder (so the taps sum to 1 exactly), applied along
 *   rows and then columns in integers, and rounded half up once at the end:
 *   `cv2.GaussianBlur(img, (K, K), σ, borderType=BORDER_REPLICATE)`.
 */
import type { Geometry } from './pil.js';

/** Index of row or column `i` with the border replicated. */
function rep(i: number, n: number): number {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

function checkOdd(k: number, what: string): void {
  if (!Number.isInteger(k) || k < 1 || k % 2 === 0)
    throw new RangeError(`${what}: window ${k} must be an odd positive integer`);
}

/** dst = the per-channel median of each K×K window of src (K odd), border replicated. */
export function medianFilter(src: Uint8Array, dst: Uint8Array, g: Geometry, k: number): void {
  checkOdd(k, 'medianFilter');
  const { height: H, width: W, channels: C } = g;
  const r = (k - 1) / 2;
  const n = k * k;
  const win = new Uint8Array(n);
  for (let c = 0; c < C; c++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        let m = 0;
        for (let dy = -r; dy <= r; dy++) {
          const row = rep(y + dy, H) * W;
          for (let dx = -r; dx <= r; dx++) {
            // insertion sort as the window fills
            const v = src[(row + rep(x + dx, W)) * C + c];
            let j = m++;
            for (; j > 0 && win[j - 1] > v; j--) win[j] = win[j - 1];
            win[j] = v;
          }
        }
        dst[(y * W + x) * C + c] = win[(n - 1) / 2];
      }
}

/** dst = round(mean of each K×K window of src), per channel, border replicated. */
export function boxFilter(src: Uint8Array, dst: Uint8Array, g: Geometry, k: number): void {
  checkOdd(k, 'boxFilter');
  const { height: H, width: W, channels: C } = g;
  const r = (k - 1) / 2;
  const n = k * k;
  for (let c = 0; c < C; c++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        let s = 0;
        for (let dy = -r; dy <= r; dy++) {
          const row = rep(y + dy, H) * W;
          for (let dx = -r; dx <= r; dx++) s += src[(row + rep(x + dx, W)) * C + c];
        }
        dst[(y * W + x) * C + c] = Math.floor(s / n + 0.5);
      }
}

/** OpenCV's rule for the kernel size of an 8-bit Gaussian blur with σ: round(6σ + 1) | 1. */
export function gaussianKernelSize(sigma: number): number {
  return Math.round(sigma * 6 + 1) | 1;
}

/**
 * The Gaussian's K taps as integers summing to 256 (OpenCV's fixed-point kernel): the normalised
 * taps times 256 are rounded from the ends inwards carrying the rounding error to the next tap;
 * the centre tap is 256 minus the others.
 */
export function gaussianTaps(sigma: number, k: number): Int32Array {
  checkOdd(k, 'gaussianTaps');
  if (!(sigma > 0)) throw new RangeError(`gaussianTaps: σ ${sigma} must be positive`);
  const mid = (k - 1) / 2;
  const w = Array.from({ length: k }, (_, i) => Math.exp(-((i - mid) ** 2) / (2 * sigma * sigma)));
  const sum = w.reduce((a, b) => a + b, 0);
  const taps = new Int32Array(k);
  let err = 0;
  let total = 0;
  for (let i = 0; i < mid; i++) {
    const v = (w[i] / sum) * 256 + err;
    const q = roundHalfEven(v);
    err = v - q;
    taps[i] = taps[k - 1 - i] = q;
    total += 2 * q;
  }
  taps[mid] = 256 - total;
  return taps;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** dst = src blurred by a K×K Gaussian of σ (OpenCV's 8-bit fixed point), border replicated. */
export function gaussianFilter(
  src: Uint8Array,
  dst: Uint8Array,
  g: Geometry,
  sigma: number,
  k = gaussianKernelSize(sigma),
): void {
  const taps = gaussianTaps(sigma, k);
  const { height: H, width: W, channels: C } = g;
  const r = (k - 1) / 2;
  const rows = new Int32Array(H * W * C); // row pass, in units of 1/256
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let i = 0; i < k; i++) s += taps[i] * src[(y * W + rep(x + i - r, W)) * C + c];
        rows[(y * W + x) * C + c] = s;
      }
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < C; c++) {
        let s = 0; // in units of 1/65536; at most 255·65536 < 2^31
        for (let i = 0; i < k; i++) s += taps[i] * rows[(rep(y + i - r, H) * W + x) * C + c];
        dst[(y * W + x) * C + c] = Math.min(255, (s + 32768) >>> 16);
      }
}
