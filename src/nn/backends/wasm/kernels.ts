/**
 * Training kernels that tfjs' wasm backend (4.22) lacks or implements slowly.
 *
 * The two backward convolutions are composed from kernels the wasm backend already has — its
 * XNNPACK `Conv2D`, `Transpose`, `Slice`, `PadV2`, `Reverse`, `Reshape` — so they run at XNNPACK's
 * speed (see /work/shared/docs/engine-notes.md):
 *
 * - filter gradient: a *valid* convolution of the padded input, transposed to [Cin, H, W, N], with
 *   the output gradient transposed to [Ho, Wo, N, Cout] as the filter, stride 1 and dilation equal
 *   to the forward stride; the [Cin, kh, kw, Cout] result is transposed back to [kh, kw, Cin, Cout].
 * - input gradient: a valid convolution of the zero-inserted (stride) and padded output gradient
 *   with the spatially reversed filter whose in/out channels are swapped.
 *
 * Padding is never materialised: positive pads go to XNNPACK as explicit convolution padding,
 * negative ones (rows the forward pass never read) become a `Slice`.
 *
 * `Tile` and `MaxPoolGrad` are replaced by plain loops over the wasm heap (./heap-kernels.ts).
 *
 * Kernels missing on wasm that are rarer in CNN training (depthwise backprop, the gradient of
 * `gather`, einsum) fall back to the pure-JS cpu backend's implementation, copying data across.
 */
import { callKernel, release } from '../kernel-call.js';
import {
  backend_util,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  Einsum,
  getKernel,
  registerKernel,
  unregisterKernel,
  UnsortedSegmentSum,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type DataType,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { HEAP_KERNELS } from './heap-kernels.js';

const WASM = 'wasm';

/** Kernels composed from wasm's own kernels (fast). */
export const COMPOSED_KERNELS: readonly string[] = [Conv2DBackpropFilter, Conv2DBackpropInput];
/** Stock wasm kernels replaced by loops over the wasm heap (./heap-kernels.ts). */
export const HEAP_KERNEL_NAMES: readonly string[] = HEAP_KERNELS.map((k) => k.kernelName);
/** Kernels that run on the cpu backend's implementation, data copied across (correct, slow). */
export const CPU_FALLBACK_KERNELS: readonly string[] = [
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  UnsortedSegmentSum,
  Einsum,
];

type Pair = [number, number];
type Shape4 = [number, number, number, number];

function run(
  backend: BackendWasm,
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  return callKernel(WASM, backend, kernelName, inputs, attrs);
}

function transpose(backend: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  return run(backend, 'Transpose', { x }, { perm });
}

function reshape(backend: BackendWasm, x: TensorInfo, shape: number[]): TensorInfo {
  return run(backend, 'Reshape', { x }, { shape });
}

/**
 * Splits spatial paddings of an NHWC tensor into the part a convolution can take (non-negative
 * explicit padding) and a crop for negative ones. Returns the tensor to convolve (the input itself
 * when no crop is needed: do not release it then) and the explicit padding.
 */
function cropForPadding(
  backend: BackendWasm,
  x: TensorInfo,
  rows: Pair,
  cols: Pair,
): { x: TensorInfo; cropped: boolean; pad: backend_util.ExplicitPadding } {
  const [n, h, w, c] = x.shape as Shape4;
  const cropTop = Math.max(0, -rows[0]);
  const cropBottom = Math.max(0, -rows[1]);
  const cropLeft = Math.max(0, -cols[0]);
  const cropRight = Math.max(0, -cols[1]);
  const pad: backend_util.ExplicitPadding = [
    [0, 0],
    [Math.max(0, rows[0]), Math.max(0, rows[1])],
    [Math.max(0, cols[0]), Math.max(0, cols[1])],
    [0, 0],
  ];
  if (cropTop + cropBottom + cropLeft + cropRight === 0) return { x, cropped: false, pad };
  const sliced = run(
    backend,
    'Slice',
    { x },
    {
      begin: [0, cropTop, cropLeft, 0],
      size: [n, h - cropTop - cropBottom, w - cropLeft - cropRight, c],
    },
  );
  return { x: sliced, cropped: true, pad };
}

function conv(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  pad: backend_util.ExplicitPadding,
  dilations: Pair,
): TensorInfo {
  return run(backend, 'Conv2D', { x, filter }, {
    strides: [1, 1],
    pad,
    dataFormat: 'NHWC',
    dilations,
    dimRoundingMode: undefined,
  } as unknown as NamedAttrMap);
}

function toNHWC(backend: BackendWasm, x: TensorInfo, channelsLast: boolean): TensorInfo {
  return channelsLast ? x : transpose(backend, x, [0, 2, 3, 1]);
}

/** The forward convolution's geometry, NHWC, dilation 1 (tfjs has no gradient for dilated convs). */
function convInfo(
  xShape: Shape4,
  filterShape: Shape4,
  attrs: Pick<Conv2DBackpropFilterAttrs, 'strides' | 'pad' | 'dimRoundingMode' | 'dataFormat'>,
): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
}

/**
 * dW[kh, kw, ci, co] = Σ_{n, oh, ow} xpad[n, s·oh + kh, s·ow + kw, ci] · dy[n, oh, ow, co]:
 * a stride-1, dilation-s valid convolution over "batch" ci, "channels" n.
 */
export function conv2DBackpropFilterNHWC(
  backend: BackendWasm,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { inHeight: h, inWidth: w, outHeight: ho, outWidth: wo } = info;
  const { top, left } = info.padInfo;
  // Input rows the forward pass read: top padding, then up to (ho - 1)·sh + kh rows in all.
  const bottom = (ho - 1) * sh + kh - h - top;
  const right = (wo - 1) * sw + kw - w - left;
  const xT = transpose(backend, x, [3, 1, 2, 0]); // [Cin, H, W, N]
  const { x: xIn, cropped, pad } = cropForPadding(backend, xT, [top, bottom], [left, right]);
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [Ho, Wo, N, Cout]
  const dwT = conv(backend, xIn, dyT, pad, [sh, sw]); // [Cin, kh, kw, Cout]
  const dw = transpose(backend, dwT, [1, 2, 0, 3]);
  release(backend, xT, dyT, dwT);
  if (cropped) release(backend, xIn);
  return dw;
}

/**
 * dx = valid convolution of dy, with zeros inserted between its pixels (stride) and padded by
 * k − 1 − pad, with the filter reversed in space and its in/out channels swapped.
 */
export function conv2DBackpropInputNHWC(
  backend: BackendWasm,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { batchSize: n, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo } = info;
  const { outChannels: cout } = info;
  const { top, left } = info.padInfo;

  // Zero insertion: [N, Ho, 1, Wo, 1, C] padded to [N, Ho, sh, Wo, sw, C] = [N, Ho·sh, Wo·sw, C].
  let up = dy;
  if (sh > 1 || sw > 1) {
    const dy6 = reshape(backend, dy, [n, ho, 1, wo, 1, cout]);
    const padded = run(
      backend,
      'PadV2',
      { x: dy6 },
      {
        paddings: [
          [0, 0],
          [0, 0],
          [0, sh - 1],
          [0, 0],
          [0, sw - 1],
          [0, 0],
        ],
        constantValue: 0,
      },
    );
    up = reshape(backend, padded, [n, ho * sh, wo * sw, cout]);
    release(backend, dy6, padded);
  }
  const padTop = kh - 1 - top;
  const padLeft = kw - 1 - left;
  const padBottom = h + kh - 1 - ho * sh - padTop;
  const padRight = w + kw - 1 - wo * sw - padLeft;
  const {
    x: dyIn,
    cropped,
    pad,
  } = cropForPadding(backend, up, [padTop, padBottom], [padLeft, padRight]);

  const reversed = run(backend, 'Reverse', { x: filter }, { dims: [0, 1] });
  const swapped = transpose(backend, reversed, [0, 1, 3, 2]); // [kh, kw, Cout, Cin]
  const dx = conv(backend, dyIn, swapped, pad, [1, 1]);
  release(backend, reversed, swapped);
  if (cropped) release(backend, dyIn);
  if (up !== dy) release(backend, up);
  return dx;
}

function conv2DBackpropFilter(args: {
  inputs: Conv2DBackpropFilterInputs;
  backend: BackendWasm;
  attrs: Conv2DBackpropFilterAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  const channelsLast = backend_util.convertConv2DDataFormat(attrs.dataFormat) === 'channelsLast';
  const info = convInfo(x.shape as Shape4, attrs.filterShape as Shape4, attrs);
  const xN = toNHWC(backend, x, channelsLast);
  const dyN = toNHWC(backend, dy, channelsLast);
  const dw = conv2DBackpropFilterNHWC(backend, xN, dyN, info);
  if (!channelsLast) release(backend, xN, dyN);
  return dw;
}

function conv2DBackpropInput(args: {
  inputs: Conv2DBackpropInputInputs;
  backend: BackendWasm;
  attrs: Conv2DBackpropInputAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy as TensorInfo;
  const filter = inputs.filter as TensorInfo;
  const channelsLast = backend_util.convertConv2DDataFormat(attrs.dataFormat) === 'channelsLast';
  const info = convInfo(attrs.inputShape as Shape4, filter.shape as Shape4, attrs);
  const dyN = toNHWC(backend, dy, channelsLast);
  const dx = conv2DBackpropInputNHWC(backend, dyN, filter, info);
  if (channelsLast) return dx;
  release(backend, dyN);
  const dxT = transpose(backend, dx, [0, 3, 1, 2]);
  release(backend, dx);
  return dxT;
}

let cpu: MathBackendCPU | undefined;

/** A private cpu backend to run fallback kernels on (not the registered 'cpu' backend). */
function cpuBackend(): MathBackendCPU {
  if (cpu === undefined) {
    cpu = new MathBackendCPU();
    // Silence its "install tfjs-node" banner: this backend is a fallback, not the user's choice.
    (cpu as unknown as { firstUse: boolean }).firstUse = false;
  }
  return cpu;
}

/** Wraps the cpu backend's kernel `kernelName` as a wasm kernel, copying inputs and outputs. */
export function cpuFallback(kernelName: string): KernelConfig {
  const kernelFunc = (args: {
    inputs: NamedTensorInfoMap;
    backend: BackendWasm;
    attrs?: NamedAttrMap;
  }) => {
    const cpuKernel = getKernel(kernelName, 'cpu');
    if (cpuKernel === undefined)
      throw new Error(`cpu backend has no '${kernelName}' kernel to fall back on`);
    const cpuB = cpuBackend();
    const cpuInputs: NamedTensorInfoMap = {};
    for (const [name, t] of Object.entries(args.inputs)) {
      if (t === undefined || t === null) continue;
      const values = args.backend.readSync(t.dataId);
      cpuInputs[name] = {
        dataId: cpuB.write(values, t.shape, t.dtype),
        shape: t.shape,
        dtype: t.dtype,
      };
    }
    let out: TensorInfo | TensorInfo[];
    try {
      out = cpuKernel.kernelFunc({ inputs: cpuInputs, backend: cpuB, attrs: args.attrs ?? {} });
    } finally {
      for (const t of Object.values(cpuInputs))
        if (t !== undefined) cpuB.disposeData(t.dataId, true);
    }
    const outs = Array.isArray(out) ? out : [out];
    const results = outs.map((o) => {
      const values = cpuB.readSync(o.dataId);
      const copy = args.backend.makeOutput(o.shape, o.dtype as DataType, undefined, values);
      cpuB.disposeData(o.dataId, true);
      return copy;
    });
    return Array.isArray(out) ? results : results[0];
  };
  return { kernelName, backendName: WASM, kernelFunc: kernelFunc as unknown as KernelFunc };
}

const composed: KernelConfig[] = [
  {
    kernelName: Conv2DBackpropFilter,
    backendName: WASM,
    kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
  },
  {
    kernelName: Conv2DBackpropInput,
    backendName: WASM,
    kernelFunc: conv2DBackpropInput as unknown as KernelFunc,
  },
];

const ours = new Set<KernelFunc>();

/**
 * Registers the training kernels for the 'wasm' backend, replacing the stock `Conv2DBackpropInput`
 * (a naive loop), `Tile` and `MaxPoolGrad`. Idempotent; works before or after the backend starts.
 * Returns the names of the kernels this module now provides.
 */
export function registerWasmTrainingKernels(): string[] {
  const configs = [
    ...composed,
    ...HEAP_KERNELS,
    ...CPU_FALLBACK_KERNELS.map((name) => cpuFallbackConfig(name)),
  ];
  const names: string[] = [];
  for (const config of configs) {
    const existing = getKernel(config.kernelName, WASM);
    if (existing !== undefined && ours.has(existing.kernelFunc)) {
      names.push(config.kernelName);
      continue;
    }
    if (existing !== undefined) {
      // A stock kernel: keep it unless we replace it on purpose.
      if (CPU_FALLBACK_KERNELS.includes(config.kernelName)) continue;
      unregisterKernel(config.kernelName, WASM);
    }
    registerKernel(config);
    ours.add(config.kernelFunc);
    names.push(config.kernelName);
  }
  return names;
}

const fallbackConfigs = new Map<string, KernelConfig>();

function cpuFallbackConfig(name: string): KernelConfig {
  let config = fallbackConfigs.get(name);
  if (config === undefined) {
    config = cpuFallback(name);
    fallbackConfigs.set(name, config);
  }
  return config;
}
