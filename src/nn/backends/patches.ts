/**
 * The one place that changes tfjs itself, as opposed to filling a backend's kernel registry (each
 * backend folder registers its own kernels). engine.ts calls these; each is idempotent.
 *
 * - {@link patchTfjs}: the `AvgPoolGrad` fix for windows that overlap the padding, on cpu, wasm and
 *   webgpu (./avgpool-grad.ts). Re-run after a backend registers its kernels (webgpu registers
 *   when its module loads).
 * - {@link patchTfjsForNative}: what the native backend needs from tfjs beyond its kernels. Each
 *   patch acts only while `native` is the current backend: tfjs-layers' BatchNormalization routed
 *   to the fused batch-norm kernels with their gradients (./native/batchnorm.ts), ReLU's gradient
 *   taken from its output (./native/kernels-layout.ts), the lean backward pass on tfjs' engine
 *   (./native/backprop.ts), zero padding folded into the next convolution
 *   (./native/fold-padding.ts), and `tf.fused.conv2d` / `tf.fused.matMul` replaced by direct
 *   kernel calls with lazily registered gradients (./native/fused-grads.ts).
 */
import { registerAvgPoolGradFix } from './avgpool-grad.js';
import { useLeanBackprop } from './native/backprop.js';
import { useFusedBatchNorm } from './native/batchnorm.js';
import { useFoldedPadding } from './native/fold-padding.js';
import { useLazyFusedGradients } from './native/fused-grads.js';
import { useNativeReluGrad } from './native/kernels-layout.js';

/** Patches for every backend. */
export function patchTfjs(): void {
  registerAvgPoolGradFix();
}

/** Patches for the native backend (inactive while another backend is current). */
export function patchTfjsForNative(): void {
  useFusedBatchNorm();
  useNativeReluGrad();
  useLeanBackprop();
  useFoldedPadding();
  useLazyFusedGradients();
}
