/**
 * On the native backend, a convolution with `valid` padding whose input is the output of a
 * ZeroPadding2D layer convolves the unpadded tensor with the padding as explicit convolution
 * padding instead (what PyTorch's `Conv2d(padding=p)` does). When every consumer of the padding
 * layer is such a convolution, the padded copy is not even made: the layer returns a tensor of the
 * padded shape with no data, which only those convolutions see (and never read). Otherwise the
 * copy is made for the other consumers. Same result; other backends run the layers unchanged.
 * Training mode only (see the padding layer's call below).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { NATIVE } from './backend.js';

type Call = (
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: Record<string, unknown>,
) => tf.Tensor | tf.Tensor[];

interface PaddingLayer {
  padding: [[number, number], [number, number]];
  dataFormat: string;
  call: Call;
  outboundNodes?: { outboundLayer?: unknown }[];
}

interface ConvLayer {
  getClassName(): string;
  padding: string;
  dataFormat: string;
  strides: number[];
  dilationRate: number[];
  rank: number;
  kernel: { read(): tf.Tensor };
  bias: { read(): tf.Tensor } | null;
  activation: { getClassName(): string };
  call: Call;
}

/** Outputs of ZeroPadding2D layers, with their input and padding. */
const padded = new WeakMap<tf.Tensor, { source: tf.Tensor; padding: PaddingLayer['padding'] }>();

function one(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor | null {
  if (!Array.isArray(inputs)) return inputs;
  return inputs.length === 1 ? inputs[0] : null;
}

/** Whether `conv` convolves a padded input with the padding folded in (see above). */
function folds(conv: ConvLayer): boolean {
  return (
    conv.rank === 2 &&
    conv.padding === 'valid' &&
    conv.dataFormat === 'channelsLast' &&
    conv.dilationRate.every((d) => d === 1) &&
    conv.activation.getClassName().toLowerCase() === 'linear'
  );
}

/** Whether every consumer of the padding layer folds it (so its output is never read). */
function onlyFoldingConvsAfter(layer: PaddingLayer): boolean {
  const next = (layer.outboundNodes ?? []).map((n) => n.outboundLayer as ConvLayer | undefined);
  return (
    next.length > 0 &&
    next.every((l) => l !== undefined && l.getClassName() === 'Conv2D' && folds(l))
  );
}

/** A float32 tensor of `shape` with no data behind it (never read: see above). */
function phantom(shape: number[]): tf.Tensor {
  const backend = tf.backend();
  const dataId = backend.write(new Float32Array(0), shape, 'float32');
  return tf.engine().makeTensorFromTensorInfo({ dataId, shape, dtype: 'float32' }, backend);
}

let installed = false;

export function useFoldedPadding(): void {
  if (installed) return;
  installed = true;
  const padProto = Object.getPrototypeOf(tfl.layers.zeroPadding2d({})) as PaddingLayer;
  const padCall = padProto.call;
  padProto.call = function (this: PaddingLayer, inputs, kwargs) {
    const input = one(inputs);
    // Inference (kwargs.training falsy): tfjs-layers' executor frees each intermediate tensor as
    // soon as its last graph consumer has run, which here is this layer, so a folding convolution
    // would read a freed input. Fold only in training mode, where the tape keeps it.
    if (
      tf.getBackend() !== NATIVE ||
      !kwargs?.training ||
      !input ||
      input.rank !== 4 ||
      this.dataFormat !== 'channelsLast'
    )
      return padCall.call(this, inputs, kwargs);
    const [[top, bottom], [left, right]] = this.padding;
    const [n, h, w, c] = input.shape;
    const out = onlyFoldingConvsAfter(this)
      ? phantom([n, h + top + bottom, w + left + right, c])
      : (padCall.call(this, inputs, kwargs) as tf.Tensor);
    padded.set(out, { source: input, padding: this.padding });
    return out;
  };
  const convProto = Object.getPrototypeOf(
    tfl.layers.conv2d({ filters: 1, kernelSize: 1 }),
  ) as ConvLayer;
  const convCall = convProto.call;
  convProto.call = function (this: ConvLayer, inputs, kwargs) {
    const input = one(inputs);
    const from = input ? padded.get(input) : undefined;
    if (from === undefined || tf.getBackend() !== NATIVE || !folds(this))
      return convCall.call(this, inputs, kwargs);
    const [[top, bottom], [left, right]] = from.padding;
    return tf.fused.conv2d({
      x: from.source as tf.Tensor4D,
      filter: this.kernel.read() as tf.Tensor4D,
      strides: this.strides as [number, number],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      bias: this.bias?.read(),
    });
  };
}
