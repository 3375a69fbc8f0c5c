/**
 * ResNet-18 and ResNet-50 for CIFAR, as in kuangliu/pytorch-cifar `models/resnet.py`:
 *
 *   conv1 3×3 64 stride 1 · BN · relu (no max pool) ·
 *   layer1..4: blocks at 64, 128, 256, 512 planes, strides 1, 2, 2, 2 ·
 *   average pool · linear (512·expansion)→classes
 *
 * BasicBlock (expansion 1, ResNet-18: [2, 2, 2, 2]): conv3×3 · BN · relu · conv3×3 · BN, plus the
 * shortcut, then relu. Bottleneck (expansion 4, ResNet-50: [3, 4, 6, 3]): conv1×1 · BN · relu ·
 * conv3×3 (stride) · BN · relu · conv1×1 (×4) · BN, plus the shortcut, then relu. The shortcut is
 * the identity, or conv1×1 (stride) · BN when the stride or width changes ("option B"). All convs
 * are bias-free. The stride sits on the 3×3 conv, padded 1 on every side as in PyTorch.
 *
 * Deviation: the reference's `avg_pool2d(out, 4)` is global average pooling here, which is the same
 * at 32×32 (4×4 maps) and lets any input size work.
 */
import * as tf from '@tensorflow/tfjs-layers';
import {
  ap,
  bn,
  conv,
  gap,
  Init,
  linear,
  modelInput,
  relu,
  type BuildOptions,
  type InputShape,
  type Sym,
} from './layers.js';

/** The shortcut: identity, or conv1×1 (stride) · BN when the stride or width changes. */
function shortcut(x: Sym, name: string, outPlanes: number, stride: number, init: Init): Sym {
  if (stride === 1 && x.shape[3] === outPlanes) return x;
  return bn(conv(x, `${name}.shortcut.0`, outPlanes, 1, init, { stride }), `${name}.shortcut.1`);
}

function basicBlock(x: Sym, name: string, planes: number, stride: number, init: Init): Sym {
  let out = relu(
    bn(conv(x, `${name}.conv1`, planes, 3, init, { stride }), `${name}.bn1`),
    `${name}.relu1`,
  );
  out = bn(conv(out, `${name}.conv2`, planes, 3, init), `${name}.bn2`);
  const sum = ap(tf.layers.add({ name: `${name}.add` }), [
    out,
    shortcut(x, name, planes, stride, init),
  ]);
  return relu(sum, `${name}.relu2`);
}

function bottleneck(x: Sym, name: string, planes: number, stride: number, init: Init): Sym {
  let out = relu(bn(conv(x, `${name}.conv1`, planes, 1, init), `${name}.bn1`), `${name}.relu1`);
  out = relu(
    bn(conv(out, `${name}.conv2`, planes, 3, init, { stride }), `${name}.bn2`),
    `${name}.relu2`,
  );
  out = bn(conv(out, `${name}.conv3`, 4 * planes, 1, init), `${name}.bn3`);
  const sum = ap(tf.layers.add({ name: `${name}.add` }), [
    out,
    shortcut(x, name, 4 * planes, stride, init),
  ]);
  return relu(sum, `${name}.relu3`);
}

function resnet(
  modelName: string,
  block: typeof basicBlock,
  numBlocks: readonly number[],
  input: InputShape,
  classes: number,
  options: BuildOptions,
): tf.LayersModel {
  const x0 = modelInput(input, classes);
  const init = new Init(options.seed);
  let x = relu(bn(conv(x0, 'conv1', 64, 3, init), 'bn1'), 'relu');
  [64, 128, 256, 512].forEach((planes, layer) => {
    for (let i = 0; i < numBlocks[layer]; i++) {
      const stride = i === 0 && layer > 0 ? 2 : 1;
      x = block(x, `layer${layer + 1}.${i}`, planes, stride, init);
    }
  });
  const logits = linear(gap(x, 'avgpool'), 'linear', classes, init);
  return tf.model({ name: modelName, inputs: x0, outputs: logits });
}

export function resnet18(
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  return resnet('resnet18', basicBlock, [2, 2, 2, 2], input, classes, options);
}

export function resnet50(
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  return resnet('resnet50', bottleneck, [3, 4, 6, 3], input, classes, options);
}
