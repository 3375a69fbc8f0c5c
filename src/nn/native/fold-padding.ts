/**
 * On the native backend, a convolution with `valid` padding whose input is the output of a
 * ZeroPadding2D layer convolves the unpadded tensor with the padding as explicit convolution
 * padding instead (what PyTorch's `Conv2d(padding=p)` does). The padded copy is still made for
 * any other consumer, but nothing saves it for the backward pass, so it is freed with the forward
 * pass's temporaries. Same result; other backends run the layers unchanged.
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
}

interface ConvLayer {
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

let installed = false;

export function useFoldedPadding(): void {
  if (installed) return;
  installed = true;
  const padProto = Object.getPrototypeOf(tfl.layers.zeroPadding2d({})) as PaddingLayer;
  const padCall = padProto.call;
  padProto.call = function (this: PaddingLayer, inputs, kwargs) {
    const out = padCall.call(this, inputs, kwargs);
    const input = one(inputs);
    if (
      tf.getBackend() === NATIVE &&
      input &&
      !Array.isArray(out) &&
      this.dataFormat === 'channelsLast'
    )
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
    if (
      from === undefined ||
      tf.getBackend() !== NATIVE ||
      this.rank !== 2 ||
      this.padding !== 'valid' ||
      this.dataFormat !== 'channelsLast' ||
      this.dilationRate.some((d) => d !== 1) ||
      this.activation.getClassName() !== 'Linear'
    )
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
