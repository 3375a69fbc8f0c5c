/**
 * The CIFAR-style model zoo: networks trained on (protected or clean) image datasets to check that a
 * protection works. Every model is a tfjs-layers functional model on NHWC input of any height, width
 * and channel count (LeNet-5: at least 16×16), ends in logits (no softmax), and has exactly the
 * trainable parameters of its PyTorch reference (each family's file gives the layout):
 *
 *   model        reference                                      CIFAR-10 trainable parameters
 *   lenet5       kuangliu/pytorch-cifar LeNet (OPS paper)        62,006
 *   smallcnn     this project's VGG-style CNN (smallcnn.ts)       1,148,874
 *   resnet18     kuangliu ResNet18                               11,173,962
 *   resnet50     kuangliu ResNet50                               23,520,842
 *   vgg16        kuangliu VGG('VGG16')                           14,728,266
 *   densenet121  kuangliu DenseNet121                             6,956,298
 *   wrn28        WideResNet(28, k) (xternalz), k = 10            36,479,194
 *   airbench94   K. Jordan's airbench94 (airbench94.ts)            1,971,352
 *
 * Common to all: BatchNorm eps 1e-5 and PyTorch momentum 0.1 (tfjs momentum 0.9); bias-free convs
 * wherever the reference has them; PyTorch's initialisation (layers.ts); layer names are the
 * reference's module paths (`layer1.0.conv1`). Deviations, none of them visible at 32×32: final
 * fixed-size average pools are global average pools, and 2×2 pools round up on odd sizes (ceil mode).
 * Also, tfjs updates the BN moving variance with the biased batch variance (PyTorch: unbiased), a
 * factor (n−1)/n on the update for n = batch·height·width values per channel.
 */
import type * as tf from '@tensorflow/tfjs-layers';
import { fail } from '../../errors.js';
import { airbench94 } from './airbench94.js';
import { densenet121 } from './densenet.js';
import type { BuildOptions, InputShape } from './layers.js';
import { lenet5 } from './lenet.js';
import { resnet18, resnet50 } from './resnet.js';
import { smallcnn } from './smallcnn.js';
import { vgg16 } from './vgg.js';
import { wrn28 } from './wrn.js';

export { BN_EPSILON, BN_MOMENTUM, type BuildOptions, type InputShape } from './layers.js';
export { WRN_DEFAULT_WIDEN } from './wrn.js';

import { MODELS, type ModelName } from '../names.js';
export { MODELS, type ModelName } from '../names.js';

const BUILDERS: Record<
  ModelName,
  (input: InputShape, classes: number, options: BuildOptions) => tf.LayersModel
> = {
  lenet5,
  smallcnn,
  resnet18,
  resnet50,
  vgg16,
  densenet121,
  wrn28,
  airbench94,
};

export function isModelName(name: string): name is ModelName {
  return (MODELS as readonly string[]).includes(name);
}

/**
 * Builds a freshly initialised model. `options.widen` is WRN's k (default 10); `options.seed` makes
 * the initial weights reproducible. Throws an OnepixelError naming the valid models for an unknown
 * name, and for a non-positive or fractional size or class count.
 */
export function buildModel(
  name: string,
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  if (!isModelName(name)) fail(`unknown model '${name}'; valid models: ${MODELS.join(', ')}`);
  if (options.seed !== undefined && !Number.isFinite(options.seed)) {
    fail(`model seed must be a finite number, got ${options.seed}`);
  }
  return BUILDERS[name](input, classes, options);
}

/** Trainable parameters (PyTorch's `sum(p.numel() for p in parameters())`; BN moving stats excluded). */
export function trainableParamCount(model: tf.LayersModel): number {
  let n = 0;
  for (const w of model.trainableWeights) n += w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
  return n;
}
