/**
 * "smallcnn": a small VGG-style CNN (this project's own, about 1.15 M parameters for CIFAR-10):
 *
 *   features: [conv3×3 64 · BN · relu] ×2 · maxpool 2 ·
 *             [conv3×3 128 · BN · relu] ×2 · maxpool 2 ·
 *             [conv3×3 256 · BN · relu] ×2 · maxpool 2
 *   global average pooling · classifier: linear 256→classes
 *
 * Convolutions are 3×3, stride 1, padding 1, bias-free (each is followed by BatchNorm); pools are 2×2,
 * stride 2 (ceil mode on odd sizes). Its PyTorch twin (the test's reference) is
 * `nn.Sequential(conv, BN, ReLU, …, MaxPool2d(2, ceil_mode=True))` + `AdaptiveAvgPool2d(1)` + `Linear`.
 * CIFAR-10: 1,144,512 conv + 1,792 BN + 2,570 linear = 1,148,874 trainable parameters.
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

/** Feature layout: channel counts, 'M' for a 2×2 max pool. */
export const SMALLCNN_CFG = [64, 64, 'M', 128, 128, 'M', 256, 256, 'M'] as const;

export function smallcnn(
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  const x0 = modelInput(input, classes);
  const init = new Init(options.seed);
  let x = x0;
  let i = 0; // index in the PyTorch nn.Sequential, for the layer names
  for (const v of SMALLCNN_CFG) {
    if (v === 'M') {
      x = pool2(x, `features.${i++}`, 'max');
    } else {
      x = conv(x, `features.${i++}`, v, 3, init);
      x = bn(x, `features.${i++}`);
      x = relu(x, `features.${i++}`);
    }
  }
  x = gap(x, 'pool');
  const logits = linear(x, 'classifier', classes, init);
  return tf.model({ name: 'smallcnn', inputs: x0, outputs: logits });
}
