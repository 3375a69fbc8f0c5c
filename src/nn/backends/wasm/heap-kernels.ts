/**
 * Memory-bound wasm kernels rewritten as plain loops over the wasm heap, where tfjs' stock C++
 * versions use per-element index arithmetic and are 10–50× slower than a copy:
 *
 * - `Tile` (the batch-norm gradient tiles 1/σ to the whole activation: 20 % of a ResNet-18 step);
 * - `MaxPoolGrad` (≈ 12 × the forward pooling's time).
 *
 * They read and write the backend's heap through typed-array views, with the same results as the
 * cpu backend (max pooling sends the gradient to the first maximum of each window, as TF does).
 */
import {
  backend_util,
  MaxPoolGrad,
  Tile,
  util,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type MaxPoolGradInputs,
  type TensorInfo,
  type TileAttrs,
  type TileInputs,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Heap = Float32Array | Int32Array | Uint8Array;

function heap(backend: BackendWasm, info: TensorInfo): Heap {
  return backend.typedArrayFromHeap(info) as Heap;
}

/** Copies [off, off + seg) of `dst` after itself until it fills `reps` copies (doubling). */
function replicate(dst: Heap, off: number, seg: number, reps: number): void {
  const total = seg * reps;
  let filled = seg;
  while (filled < total) {
    const n = Math.min(filled, total - filled);
    dst.copyWithin(off + filled, off, off + n);
    filled += n;
  }
}

export function tileKernel(args: {
  inputs: TileInputs;
  backend: BackendWasm;
  attrs: TileAttrs;
}): TensorInfo {
  const { backend } = args;
  const x = args.inputs.x as TensorInfo;
  const reps = args.attrs.reps;
  const shape = x.shape;
  const rank = shape.length;
  const outShape = shape.map((s, i) => s * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;
  // Views after the allocation: growing the heap detaches older ones.
  const src = heap(backend, x);
  const dst = heap(backend, out);
  if (rank === 0) {
    dst[0] = src[0];
    return out;
  }
  const inStrides = [...util.computeStrides(shape), 1];
  const outStrides = [...util.computeStrides(outShape), 1];
  // Fills out[outOff …] with the tiling of x[inOff …] along dimensions d…rank-1.
  const fill = (d: number, inOff: number, outOff: number): void => {
    let seg: number;
    if (d === rank - 1) {
      dst.set(src.subarray(inOff, inOff + shape[d]), outOff);
      seg = shape[d];
    } else {
      for (let i = 0; i < shape[d]; i++)
        fill(d + 1, inOff + i * inStrides[d], outOff + i * outStrides[d]);
      seg = shape[d] * outStrides[d];
    }
    replicate(dst, outOff, seg, reps[d]);
  };
  fill(0, 0, 0);
  return out;
}

export function maxPoolGradKernel(args: {
  inputs: MaxPoolGradInputs;
  backend: BackendWasm;
  attrs: MaxPoolGradAttrs;
}): TensorInfo {
  const { backend, attrs } = args;
  const dy = args.inputs.dy as TensorInfo;
  const input = args.inputs.input as TensorInfo;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const dx = backend.makeOutput(input.shape, 'float32');
  const xv = heap(backend, input) as Float32Array;
  const dyv = heap(backend, dy) as Float32Array;
  const dxv = heap(backend, dx) as Float32Array;
  dxv.fill(0);
  for (let b = 0; b < batchSize; b++) {
    const xBatch = b * inHeight * inWidth * c;
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = oh * strideHeight - top;
      const hStart = Math.max(0, h0);
      const hEnd = Math.min(inHeight, h0 + fh);
      for (let ow = 0; ow < outWidth; ow++) {
        const w0 = ow * strideWidth - left;
        const wStart = Math.max(0, w0);
        const wEnd = Math.min(inWidth, w0 + fw);
        const q = ((b * outHeight + oh) * outWidth + ow) * c;
        for (let k = 0; k < c; k++) {
          let best = -Infinity;
          let pos = -1;
          for (let h = hStart; h < hEnd; h++) {
            let p = xBatch + (h * inWidth + wStart) * c + k;
            for (let w = wStart; w < wEnd; w++, p += c) {
              const v = xv[p];
              if (v > best) {
                best = v;
                pos = p;
              }
            }
          }
          if (pos >= 0) dxv[pos] += dyv[q + k];
        }
      }
    }
  }
  return dx;
}

export const HEAP_KERNELS: readonly KernelConfig[] = [
  { kernelName: Tile, backendName: 'wasm', kernelFunc: tileKernel as unknown as KernelFunc },
  {
    kernelName: MaxPoolGrad,
    backendName: 'wasm',
    kernelFunc: maxPoolGradKernel as unknown as KernelFunc,
  },
];
