/**
 * Training kernels where tfjs-backend-webgpu (4.22) is slow.
 *
 * - `Conv2DBackpropFilter`: the stock shader gives each filter element one thread that loops over
 *   the whole batch and image (for a 3×3×64×64 filter at batch 128 on 32×32 images: 37 k threads,
 *   131 k multiply-adds each, no tiling). Here it is one matrix product per filter tap:
 *   dW[r, c] = X_rc^T · dY, where X_rc is the (padded, strided) input window that tap (r, c) saw,
 *   reshaped to [N·Ho·Wo, Cin], and dY the output gradient as [N·Ho·Wo, Cout]. These products have
 *   a small output and a long inner dimension, which tfjs' WebGPU matMul runs with its split-K
 *   program (many workgroups, atomic adds).
 * - `Conv2DBackpropInput`: tfjs ships a matrix-multiply (implicit GEMM) shader for it but selects
 *   a naive one by default (flag `WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE`); the flag is turned off.
 *
 * `ONEPIXEL_WEBGPU_KERNELS=stock` keeps tfjs' own kernels (for benchmarks).
 */
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

/** Runs one kernel the webgpu backend has registered, straight through its kernel function. */
function run(
  backend: KernelBackend,
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const kernel = getKernel(kernelName, WEBGPU);
  if (kernel === undefined) throw new Error(`webgpu backend has no '${kernelName}' kernel`);
  const out = kernel.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`webgpu kernel '${kernelName}' returned several outputs`);
  return out;
}

/** Frees intermediate results (reference counted: a reshape shares its input's data). */
function release(backend: KernelBackend, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

/** The filter gradient as one split-K matrix product per filter tap. */
function filterGradByTaps(args: {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}): TensorInfo {
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
  const m = n * ho * wo;
  const dy2 = run(backend, Reshape, { x: dy }, { shape: [1, m, cout] });
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
      const a = run(backend, Reshape, { x: window }, { shape: [1, m, cin] });
      taps.push(run(backend, BatchMatMul, { a, b: dy2 }, { transposeA: true, transposeB: false }));
      release(backend, window, a);
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
  if (registered || process.env.ONEPIXEL_WEBGPU_KERNELS === 'stock') return;
  registered = true;
  env().set('WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE', false);
  if (getKernel(Conv2DBackpropFilter, WEBGPU)) unregisterKernel(Conv2DBackpropFilter, WEBGPU);
  registerKernel({
    kernelName: Conv2DBackpropFilter,
    backendName: WEBGPU,
    kernelFunc: filterGradByTaps as unknown as KernelFunc,
  });
}
