/**
 * VGG-16 for CIFAR, as in kuangliu/pytorch-cifar `models/vgg.py`:
 *
 *   features: [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
 *             each number a conv3×3 (padding 1, *with* bias, as in the reference) · BN · relu,
 *             each M a 2×2 stride-2 max pool · AvgPool2d(1) (a no-op) ·
 *   classifier: linear 512→classes
 *
 * Deviations, both invisible at 32×32: max pools use ceil mode on odd sizes (28×28 → 14, 7, 4, 2, 1
 * instead of failing at the fifth pool), and the features are globally averaged before the
 * classifier (the reference flattens a 1×1×512 map), so any input size keeps 512 inputs.
 */
import * as tf from '@tensorflow/tfjs-layers';
import {
  bn,
  conv,
  gap,
  Init,
  linear,
  modelInput,
  pool2,
  relu,
  type BuildOptions,
  type InputShape,
} from './layers.js';

export const VGG16_CFG = [
  64,
  64,
  'M',
  128,
  128,
  'M',
  256,
  256,
  256,
  'M',
  512,
  512,
  512,
  'M',
  512,
  512,
  512,
  'M',
] as const;

export function vgg16(
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  const x0 = modelInput(input, classes);
  const init = new Init(options.seed);
  let x = x0;
  let i = 0; // index in the reference's nn.Sequential, for the layer names
  for (const v of VGG16_CFG) {
    if (v === 'M') {
      x = pool2(x, `features.${i++}`, 'max');
    } else {
      x = conv(x, `features.${i++}`, v, 3, init, { bias: true });
      x = bn(x, `features.${i++}`);
      x = relu(x, `features.${i++}`);
    }
  }
  x = gap(x, `features.${i}`);
  const logits = linear(x, 'classifier', classes, init);
  return tf.model({ name: 'vgg16', inputs: x0, outputs: logits });
}
