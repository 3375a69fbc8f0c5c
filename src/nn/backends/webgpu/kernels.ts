/**
 * Training kernels where tfjs-backend-webgpu (4.22) is slow.
 *
 * - `Conv2DBackpropFilter`: the stock shader gives each filter element one thread that loops over
 *   the whole batch and image (for a 3×3×64×64 filter at batch 128 on 32×32 images: 37 k threads,
 *   131 k multiply-adds each, no tiling). Here it is matrix products per filter tap:
 *   dW[r, c] = X_rc^T · dY, where X_rc is the (padded, strided) input window that tap (r, c) saw,
 *   as [N·Ho·Wo, Cin], and dY the output gradient as [N·Ho·Wo, Cout]. The long inner dimension
 *   N·Ho·Wo is cut into B chunks of whole images (about {@link CHUNK} rows each): one batched
 *   product [B, Cin, Cout] over the chunks, then a sum over B — many workgroups, no atomics, and
 *   deterministic. (`ONEPIXEL_WEBGPU_KERNELS=splitk` uses one product per tap instead, which tfjs
 *   runs with its split-K program and atomic adds.)
 * - `Conv2DBackpropInput`: tfjs ships a matrix-multiply (implicit GEMM) shader for it but selects
 *   a naive one by default (flag `WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE`); the flag is turned off.
 *
 * `ONEPIXEL_WEBGPU_KERNELS=stock` keeps tfjs' own kernels (for benchmarks).
 */
import { callKernel, release } from '../kernel-call.js';
import {
  backend_util,
  BatchMatMul,
  Concat,
  Conv2DBackpropFilter,
  env,
  getKernel,
  PadV2,
  registerKernel,
  Reshape,
  Slice,
  StridedSlice,
  Sum,
  unregisterKernel,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  type KernelBackend,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

const WEBGPU = 'webgpu';

/** Rows of the inner dimension per chunk of the batched filter-gradient product (about). */
export const CHUNK = 2048;

/** How the filter gradient is computed: see the file's comment. */
type FilterGradMode = 'batched' | 'splitk';

/** Images per chunk: the smallest divisor g of n with g·rows ≥ CHUNK (or n). */
function imagesPerChunk(n: number, rowsPerImage: number): number {
  for (let g = 1; g < n; g++) if (n % g === 0 && g * rowsPerImage >= CHUNK) return g;
  return n;
}

function run(
  backend: KernelBackend,
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  return callKernel(WEBGPU, backend, kernelName, inputs, attrs);
}

/** The filter gradient as matrix products per filter tap (see the file's comment). */
function filterGradByTaps(
  mode: FilterGradMode,
  args: {
    inputs: NamedTensorInfoMap;
    backend: KernelBackend;
    attrs?: NamedAttrMap;
  },
): TensorInfo {
  const { x, dy } = args.inputs as unknown as Conv2DBackpropFilterInputs & {
    x: TensorInfo;
    dy: TensorInfo;
  };
  const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  const backend = args.backend;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: cin } = info;
  const { outHeight: ho, outWidth: wo, outChannels: cout } = info;
  const { top, left } = info.padInfo;
  // Rows and columns the taps reach: [-top, kh − 1 + sh·(ho − 1) − top]; pad to cover them.
  const bottom = Math.max(0, kh - 1 + sh * (ho - 1) + 1 - top - h);
  const right = Math.max(0, kw - 1 + sw * (wo - 1) + 1 - left - w);
  const padded =
    top > 0 || left > 0 || bottom > 0 || right > 0
      ? run(
          backend,
          PadV2,
          { x },
          {
            paddings: [
              [0, 0],
              [top, bottom],
              [left, right],
              [0, 0],
            ],
            constantValue: 0,
          },
        )
      : null;
  const src = padded ?? x;
  const chunks = mode === 'batched' ? n / imagesPerChunk(n, ho * wo) : 1;
  const m = (n * ho * wo) / chunks;
  const dy2 = run(backend, Reshape, { x: dy }, { shape: [chunks, m, cout] });
  const taps: TensorInfo[] = [];
  for (let r = 0; r < kh; r++)
    for (let c = 0; c < kw; c++) {
      const window =
        sh === 1 && sw === 1
          ? run(backend, Slice, { x: src }, { begin: [0, r, c, 0], size: [n, ho, wo, cin] })
          : run(
              backend,
              StridedSlice,
              { x: src },
              {
                begin: [0, r, c, 0],
                end: [n, r + sh * (ho - 1) + 1, c + sw * (wo - 1) + 1, cin],
                strides: [1, sh, sw, 1],
                beginMask: 0,
                endMask: 0,
                ellipsisMask: 0,
                newAxisMask: 0,
                shrinkAxisMask: 0,
              },
            );
      const a = run(backend, Reshape, { x: window }, { shape: [chunks, m, cin] });
      const prod = run(
        backend,
        BatchMatMul,
        { a, b: dy2 },
        { transposeA: true, transposeB: false },
      );
      release(backend, window, a);
      if (chunks === 1) taps.push(prod);
      else {
        taps.push(run(backend, Sum, { x: prod }, { axis: [0], keepDims: true }));
        release(backend, prod);
      }
    }
  const stacked =
    taps.length === 1
      ? taps[0]
      : run(backend, Concat, taps as unknown as NamedTensorInfoMap, { axis: 0 });
  const out = run(backend, Reshape, { x: stacked }, { shape: [kh, kw, cin, cout] });
  release(backend, dy2, ...taps, ...(taps.length === 1 ? [] : [stacked]));
  if (padded) release(backend, padded);
  return out;
}

let registered = false;

/** Replaces the slow webgpu training kernels (once; a no-op with ONEPIXEL_WEBGPU_KERNELS=stock). */
export function registerWebgpuTrainingKernels(): void {
  const choice = process.env.ONEPIXEL_WEBGPU_KERNELS;
  if (registered || choice === 'stock') return;
  const mode: FilterGradMode = choice === 'splitk' ? 'splitk' : 'batched';
  registered = true;
  env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', false);
  if (getKernel(Conv2DBackpropFilter, WEBGPU)) unregisterKernel(Conv2DBackpropFilter, WEBGPU);
  registerKernel({
    kernelName: Conv2DBackpropFilter,
    backendName: WEBGPU,
    kernelFunc: ((args: Parameters<typeof filterGradByTaps>[1]) =>
      filterGradByTaps(mode, args)) as unknown as KernelFunc,
  });
}
