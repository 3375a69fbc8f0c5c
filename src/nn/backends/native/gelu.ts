/**
 * GELU on the native backend: `NativeGelu` (y = x·Φ(x), the erf form) and its gradient
 * `NativeGeluGrad` (dy·(Φ(x) + x·φ(x)), from the saved input), one oneDNN eltwise call each
 * (native/src/gelu.cc). tfjs has no GELU kernel of its own (tfjs-layers composes it from erf), so
 * these run only through {@link nativeGelu}.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerGradient, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';
import { nativeKernel, type NativeBackend, type Ins } from './backend.js';

export const GELU = 'NativeGelu';
export const GELU_GRAD = 'NativeGeluGrad';

const forward: KernelFunc = (args) => {
  const { x } = args.inputs as Ins;
  const b = args.backend as NativeBackend;
  const out = b.output(x.shape);
  b.addon.gelu(b.f32(x), null, out.values);
  return out.info;
};

const backward: KernelFunc = (args) => {
  const { x, dy } = args.inputs as Ins;
  const b = args.backend as NativeBackend;
  const out = b.output(x.shape);
  b.addon.gelu(b.f32(x), b.f32(dy), out.values);
  return out.info;
};

export const GELU_KERNELS: KernelConfig[] = [
  nativeKernel(GELU, forward),
  nativeKernel(GELU_GRAD, backward),
];

let gradientRegistered = false;

/** GELU of a float32 tensor on the native backend (differentiable). */
export function nativeGelu(x: tf.Tensor): tf.Tensor {
  if (!gradientRegistered) {
    gradientRegistered = true;
    registerGradient({
      kernelName: GELU,
      inputsToSave: ['x'],
      gradFunc: (dy, saved) => ({
        x: () =>
          tf.engine().runKernel(GELU_GRAD, { x: saved[0], dy: dy as tf.Tensor }) as tf.Tensor,
      }),
    });
  }
  return tf.engine().runKernel(GELU, { x }) as tf.Tensor;
}
