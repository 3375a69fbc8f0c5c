/**
 * Fused convolutions and dense layers whose gradients compute only what the backward pass asks
 * for. tfjs' `fused.conv2d` and `fused.matMul` (what tfjs-layers' Conv2D and Dense call) wrap the
 * kernel in a custom gradient that computes the input, filter and bias gradients all at once,
 * before it is known which are wanted: a PGD step (only the input's) paid for every filter
 * gradient, and a training step for the image's gradient at the first layer; the unwanted tensors
 * also stayed allocated until the end of the backward pass.
 *
 * On the native backend, the plain cases (NHWC, linear activation, undilated, a bias of one value
 * per output channel, float32) run the FusedConv2D / _FusedMatMul kernel directly instead, recorded
 * on the tape with the registered gradients below, whose parts are separate thunks: the lean
 * backward pass (./backprop.ts) calls only those on its path, and so does tfjs' own. When the
 * gradient being recorded will want neither the filter's nor the bias's (./backprop.ts'
 * `gradientUnwanted`: PGD), a convolution runs as CONV_INPUT_GRAD_ONLY, which saves the filter but
 * not its input. Any other case, and other backends, run tfjs' op unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  BatchMatMul,
  Conv2D,
  Conv2DBackpropInput,
  FusedConv2D,
  getGradient,
  registerGradient,
  _FusedMatMul,
  type NamedAttrMap,
} from '@tensorflow/tfjs-core';
import { NATIVE } from './backend.js';
import { gradientUnwanted } from './backprop.js';
import { CONV_INPUT_GRAD_ONLY } from './kernels-conv.js';

type ConvArgs = Parameters<typeof tf.fused.conv2d>[0];
type MatMulArgs = Parameters<typeof tf.fused.matMul>[0];

/** A float32 tensor of this rank (not a TensorLike). */
function isF32(t: unknown, rank: number): t is tf.Tensor {
  return t instanceof tf.Tensor && t.rank === rank && t.dtype === 'float32';
}

/** A bias the native kernels take: absent, or a float32 vector, one value per output channel. */
function plainBias(bias: unknown, channels: number): boolean {
  return bias == null || (isF32(bias, 1) && bias.size === channels);
}

/** The gradient of a bias vector: dy summed over every axis but the last. */
function biasGrad(dy: tf.Tensor): tf.Tensor {
  return tf.sum(
    dy,
    dy.shape.slice(0, -1).map((_, i) => i),
  );
}

function convDirect(a: ConvArgs): tf.Tensor | null {
  const { x, filter, bias } = a;
  const dilations = a.dilations ?? 1;
  if (
    tf.getBackend() !== NATIVE ||
    !isF32(x, 4) ||
    !isF32(filter, 4) ||
    x.shape[3] !== filter.shape[2] ||
    (a.activation ?? 'linear') !== 'linear' ||
    (a.dataFormat ?? 'NHWC') !== 'NHWC' ||
    a.preluActivationWeights != null ||
    !(typeof dilations === 'number' ? [dilations] : dilations).every((d) => d === 1) ||
    !plainBias(bias, filter.shape[3])
  )
    return null;
  const inputs: tf.NamedTensorMap =
    bias == null ? { x, filter } : { x, filter, bias: bias as tf.Tensor };
  const attrs = {
    strides: a.strides,
    pad: a.pad,
    dataFormat: 'NHWC',
    dilations: [1, 1],
    dimRoundingMode: a.dimRoundingMode,
    activation: 'linear',
    inputShape: x.shape,
  };
  // When no weight gradient will be wanted, the input need not be kept for one.
  const kernel = gradientUnwanted(filter, bias as tf.Tensor | undefined)
    ? CONV_INPUT_GRAD_ONLY
    : FusedConv2D;
  return tf.engine().runKernel(kernel, inputs, attrs as unknown as NamedAttrMap) as tf.Tensor;
}

function matMulDirect(m: MatMulArgs): tf.Tensor | null {
  const { a, b, bias } = m;
  const tA = m.transposeA ?? false;
  const tB = m.transposeB ?? false;
  if (
    tf.getBackend() !== NATIVE ||
    !isF32(a, 2) ||
    !isF32(b, 2) ||
    a.shape[tA ? 0 : 1] !== b.shape[tB ? 1 : 0] ||
    (m.activation ?? 'linear') !== 'linear' ||
    m.preluActivationWeights != null ||
    !plainBias(bias, b.shape[tB ? 0 : 1] ?? 0)
  )
    return null;
  const inputs: tf.NamedTensorMap = bias == null ? { a, b } : { a, b, bias: bias as tf.Tensor };
  const attrs = { transposeA: tA, transposeB: tB, activation: 'linear' };
  return tf.engine().runKernel(_FusedMatMul, inputs, attrs as unknown as NamedAttrMap) as tf.Tensor;
}

let installed = false;

/** Routes tfjs' fused ops as described above and registers their lazy gradients (idempotent). */
export function useLazyFusedGradients(): void {
  if (installed) return;
  installed = true;
  const conv = getGradient(Conv2D);
  const matMul = getGradient(BatchMatMul);
  if (conv === undefined || matMul === undefined) return;
  // Only the kernels run below are taped under these names: tfjs' fused ops run them inside their
  // custom gradient, where the tape is off.
  // The plain op's gradient for its two inputs, plus the bias's.
  const withBias = (kernelName: string, plain: typeof conv, inputsToSave: [string, string]) =>
    registerGradient({
      kernelName,
      inputsToSave,
      gradFunc: (dy, saved, attrs) => {
        const d = dy as tf.Tensor;
        return { ...plain.gradFunc(d, saved.slice(0, 2), attrs), bias: () => biasGrad(d) };
      },
    });
  withBias(FusedConv2D, conv, ['x', 'filter']);
  registerGradient({
    kernelName: CONV_INPUT_GRAD_ONLY,
    inputsToSave: ['filter'],
    gradFunc: (dy, saved, attrs) => {
      const [filter] = saved;
      const d = dy as tf.Tensor;
      const run = () => tf.engine().runKernel(Conv2DBackpropInput, { dy: d, filter }, attrs);
      return { x: run as () => tf.Tensor };
    },
  });
  withBias(_FusedMatMul, matMul, ['a', 'b']);
  // tfjs-layers calls these through tfjs-core's `fused` object at call time.
  const fused = tf.fused as { conv2d: typeof tf.fused.conv2d; matMul: typeof tf.fused.matMul };
  const fusedConv = fused.conv2d;
  const fusedMatMul = fused.matMul;
  fused.conv2d = ((a: ConvArgs) => convDirect(a) ?? fusedConv(a)) as typeof fused.conv2d;
  fused.matMul = ((m: MatMulArgs) => matMulDirect(m) ?? fusedMatMul(m)) as typeof fused.matMul;
}
