/**
 * Native PadV2 and Slice (the zero padding before ResNet's strided convolutions, and its
 * gradient), and a one-pass ReLU gradient used instead of tfjs' `dy · step(x)` on this backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  getGradient,
  PadV2,
  registerGradient,
  Relu,
  Slice,
  slice_util,
  type KernelConfig,
  type KernelFunc,
} from '@tensorflow/tfjs-core';
import {
  allFloat32,
  cpuKernel,
  NATIVE,
  nativeKernel,
  type NativeBackend,
  type Attrs,
  type Ins,
} from './backend.js';

export const RELU_GRAD = 'NativeReluGrad';

const pad: KernelFunc = (args) => {
  const { x } = args.inputs as Ins;
  const a = (args.attrs ?? {}) as Attrs;
  const paddings = a.paddings as [number, number][];
  if (!allFloat32(x) || x.shape.length === 0 || x.shape.length > 16) return cpuKernel(PadV2, args);
  const be = args.backend as NativeBackend;
  const out = be.output(x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]));
  const pads = Int32Array.from([...paddings.map((p) => p[0]), ...paddings.map((p) => p[1])]);
  be.addon.pad(
    be.f32(x),
    Int32Array.from(x.shape),
    out.values,
    pads,
    (a.constantValue as number) ?? 0,
  );
  return out.info;
};

const slice: KernelFunc = (args) => {
  const { x } = args.inputs as Ins;
  const a = (args.attrs ?? {}) as Attrs;
  if (!allFloat32(x) || x.shape.length === 0 || x.shape.length > 16) return cpuKernel(Slice, args);
  const [begin, size] = slice_util.parseSliceParams(
    x as tf.Tensor,
    a.begin as number | number[],
    a.size as number | number[] | undefined,
  );
  slice_util.assertParamsValid(x as tf.Tensor, begin, size);
  const be = args.backend as NativeBackend;
  const out = be.output(size);
  if (out.values.length > 0)
    be.addon.slice(
      be.f32(x),
      Int32Array.from(x.shape),
      out.values,
      Int32Array.from(begin),
      Int32Array.from(size),
    );
  return out.info;
};

const reluGrad: KernelFunc = (args) => {
  const { dy, x } = args.inputs as Ins;
  const be = args.backend as NativeBackend;
  const out = be.output(x.shape);
  be.addon.reluGrad(be.f32(dy), be.f32(x), out.values);
  return out.info;
};

export const LAYOUT_KERNELS: KernelConfig[] = [
  nativeKernel(PadV2, pad),
  nativeKernel(Slice, slice),
  nativeKernel(RELU_GRAD, reluGrad),
];

let reluGradRegistered = false;

/**
 * ReLU's gradient from its output instead of its input (relu(x) > 0 exactly where x > 0, NaN where
 * x is NaN, so tfjs' own gradient function gives the same values when handed the output): the
 * input of a ReLU need not outlive the forward pass, as with PyTorch's. On the native backend the
 * gradient is one native pass; elsewhere it is tfjs' own.
 */
export function useNativeReluGrad(): void {
  if (reluGradRegistered) return;
  reluGradRegistered = true;
  const original = getGradient(Relu);
  if (original === undefined) return;
  registerGradient({
    ...original,
    inputsToSave: [],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const d = dy as tf.Tensor;
      const [y] = saved;
      if (tf.getBackend() !== NATIVE || d.dtype !== 'float32' || y.dtype !== 'float32')
        return original.gradFunc(dy, saved, attrs);
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: d, x: y }) as tf.Tensor };
    },
  });
}
