/**
 * An average-pool gradient that agrees with the average pool where windows overlap the padding.
 *
 * tfjs 4.22's cpu, wasm and webgpu `AvgPool` average each window over its pixels inside the image,
 * but their `AvgPoolGrad` divides every window by its full size, so pixels on a padded edge get too
 * small a gradient: under a 2×2 `same` pool of a 3×3 map, the last row and column get half of
 * theirs and the corner a quarter. In the model zoo that happens in DenseNet-121's transitions on
 * odd sizes (Fashion-MNIST's 7×7, for one); at CIFAR-10's 32×32 no pool window touches padding.
 *
 * The fix wraps each backend's own kernel: `dy` is first multiplied by (window size ÷ pixels of
 * the window inside the image), one factor per output position, then the stock kernel runs. That is
 * exact, and uses only kernels the backend has. Pools whose windows all lie inside the image go
 * straight to the stock kernel. The native backend has its own, correct kernel.
 */
import {
  AvgPoolGrad,
  backend_util,
  getKernel,
  Multiply,
  registerKernel,
  unregisterKernel,
  type AvgPoolGradAttrs,
  type AvgPoolGradInputs,
  type KernelBackend,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { callKernel, release } from './kernel-call.js';

const FIXED_BACKENDS = ['cpu', 'wasm', 'webgpu'];
const ours = new Set<KernelFunc>();

/** Pixels of each output window inside the image, as `window size ÷ count`; null if all full. */
export function windowScale(info: backend_util.Conv2DInfo): Float32Array | null {
  const inside = (o: number, stride: number, pad: number, size: number, extent: number) => {
    const start = o * stride - pad;
    return Math.min(start + size, extent) - Math.max(start, 0);
  };
  const full = info.filterHeight * info.filterWidth;
  const scale = new Float32Array(info.outHeight * info.outWidth);
  let partial = false;
  for (let oy = 0; oy < info.outHeight; oy++) {
    const rows = inside(oy, info.strideHeight, info.padInfo.top, info.filterHeight, info.inHeight);
    for (let ox = 0; ox < info.outWidth; ox++) {
      const cols = inside(ox, info.strideWidth, info.padInfo.left, info.filterWidth, info.inWidth);
      const s = full / (rows * cols);
      if (s !== 1) partial = true;
      scale[oy * info.outWidth + ox] = s;
    }
  }
  return partial ? scale : null;
}

/** Replaces the stock `AvgPoolGrad` of cpu, wasm and webgpu (where registered). Idempotent. */
export function registerAvgPoolGradFix(): void {
  for (const backendName of FIXED_BACKENDS) {
    const stock = getKernel(AvgPoolGrad, backendName);
    if (stock === undefined || ours.has(stock.kernelFunc)) continue;
    const kernelFunc: KernelFunc = ({ inputs, backend: b, attrs }) => {
      const backend = b as KernelBackend;
      const { dy, input } = inputs as unknown as Record<keyof AvgPoolGradInputs, TensorInfo>;
      const { filterSize, strides, pad } = attrs as unknown as AvgPoolGradAttrs;
      const info = backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        filterSize,
        strides,
        1,
        pad,
      );
      const scale = windowScale(info);
      if (scale === null) return stock.kernelFunc({ inputs, backend, attrs });
      const shape = [1, info.outHeight, info.outWidth, 1];
      const s: TensorInfo = {
        dataId: backend.write(scale, shape, 'float32'),
        shape,
        dtype: 'float32',
      };
      const scaled = callKernel(backendName, backend, Multiply, { a: dy, b: s });
      const out = stock.kernelFunc({ inputs: { dy: scaled, input }, backend, attrs });
      release(backend, s, scaled);
      return out;
    };
    unregisterKernel(AvgPoolGrad, backendName);
    registerKernel({ ...stock, kernelFunc });
    ours.add(kernelFunc);
  }
}
