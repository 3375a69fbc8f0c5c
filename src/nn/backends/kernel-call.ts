/**
 * Calling a backend's registered kernels directly, for kernels composed from other kernels of the
 * same backend (./wasm/kernels.ts, ./webgpu/kernels.ts): no tape, no tensor bookkeeping, and the
 * intermediates are freed by hand.
 */
import {
  getKernel,
  type KernelBackend,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

/** Runs one kernel `backendName` has registered, straight through its kernel function. */
export function callKernel(
  backendName: string,
  backend: KernelBackend,
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const kernel = getKernel(kernelName, backendName);
  if (kernel === undefined) throw new Error(`${backendName} backend has no '${kernelName}' kernel`);
  const out = kernel.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out))
    throw new Error(`${backendName} kernel '${kernelName}' returned several outputs`);
  return out;
}

/** Frees intermediate results (reference counted: a reshape shares its input's data). */
export function release(backend: KernelBackend, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}
