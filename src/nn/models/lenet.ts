/**
 * LeNet-5 as in the One-Pixel Shortcut paper's code (kuangliu/pytorch-cifar `models/lenet.py`):
 *
 *   conv1 C→6 5×5 (bias) · relu · maxpool 2 · conv2 6→16 5×5 (bias) · relu · maxpool 2 ·
 *   flatten · fc1 →120 · relu · fc2 120→84 · relu · fc3 84→classes
 *
 * Convolutions are unpadded and the pools floor, as in PyTorch, so the flattened size follows the
 * input: 16·5·5 = 400 at 32×32, 16·4·4 = 256 at 28×28; inputs under 16×16 leave nothing to flatten
 * and are refused. CIFAR-10: 62,006 trainable parameters.
 *
 * The one difference from PyTorch is the flatten order: NHWC flattens (h, w, c), PyTorch (c, h, w),
 * so fc1's weight rows are a permutation of PyTorch's (same count, same function).
 */
import * as tf from '@tensorflow/tfjs-layers';
import { fail } from '../../errors.js';
import {
  ap,
  conv,
  Init,
  linear,
  modelInput,
  relu,
  type BuildOptions,
  type InputShape,
} from './layers.js';

export function lenet5(
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  const x0 = modelInput(input, classes);
  for (const key of ['height', 'width'] as const) {
    if (input[key] < 16)
      fail(`lenet5 needs inputs of at least 16×16 pixels, got ${key} ${input[key]}`);
  }
  const init = new Init(options.seed);
  const maxpool = (x: tf.SymbolicTensor, name: string) =>
    ap(tf.layers.maxPooling2d({ name, poolSize: 2, strides: 2, padding: 'valid' }), x);
  let x = conv(x0, 'conv1', 6, 5, init, { padding: 0, bias: true });
  x = maxpool(relu(x, 'relu1'), 'pool1');
  x = conv(x, 'conv2', 16, 5, init, { padding: 0, bias: true });
  x = maxpool(relu(x, 'relu2'), 'pool2');
  x = ap(tf.layers.flatten({ name: 'flatten' }), x);
  x = relu(linear(x, 'fc1', 120, init), 'relu3');
  x = relu(linear(x, 'fc2', 84, init), 'relu4');
  const logits = linear(x, 'fc3', classes, init);
  return tf.model({ name: 'lenet5', inputs: x0, outputs: logits });
}
