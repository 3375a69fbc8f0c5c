/**
 * Wide ResNet WRN-28-k (Zagoruyko & Komodakis 2016), as in the usual `wide_resnet.py`
 * (xternalz/WideResNet-pytorch), with dropout rate 0 (its default):
 *
 *   conv1 3×3 → 16 ·
 *   block1..3: 4 pre-activation blocks each, at 16k, 32k, 64k channels, strides 1, 2, 2 ·
 *   BN · relu · average pool · fc 64k→classes
 *
 * Block: BN · relu · conv3×3 (stride) · BN · relu · conv3×3, added to the input, or — when the width
 * changes — to conv1×1 (stride) of the *activated* input (the reference's `equalInOut` logic). All
 * convs are bias-free and initialised as the reference does (kaiming normal, fan-out, relu); the fc
 * bias starts at zero. WRN-28-10 on CIFAR-10: 36,479,194 trainable parameters.
 *
 * Deviation: the reference's `avg_pool2d(out, 8)` is global average pooling here (same at 32×32).
 */
import * as tf from '@tensorflow/tfjs-layers';
import { fail } from '../../errors.js';
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

export const WRN_DEPTH = 28;
export const WRN_DEFAULT_WIDEN = 10;

function block(x: Sym, name: string, outPlanes: number, stride: number, init: Init): Sym {
  const equalInOut = x.shape[3] === outPlanes;
  const act = relu(bn(x, `${name}.bn1`), `${name}.relu1`);
  let out = conv(act, `${name}.conv1`, outPlanes, 3, init, { stride, kaiming: true });
  out = relu(bn(out, `${name}.bn2`), `${name}.relu2`);
  out = conv(out, `${name}.conv2`, outPlanes, 3, init, { kaiming: true });
  const short = equalInOut
    ? x
    : conv(act, `${name}.convShortcut`, outPlanes, 1, init, { stride, kaiming: true });
  return ap(tf.layers.add({ name: `${name}.add` }), [short, out]);
}

export function wrn28(
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  const k = options.widen ?? WRN_DEFAULT_WIDEN;
  if (!Number.isInteger(k) || k < 1)
    fail(`wrn28 widen factor must be a positive integer, got ${k}`);
  const x0 = modelInput(input, classes);
  const init = new Init(options.seed);
  const n = (WRN_DEPTH - 4) / 6;
  let x = conv(x0, 'conv1', 16, 3, init, { kaiming: true });
  [16 * k, 32 * k, 64 * k].forEach((planes, b) => {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 && b > 0 ? 2 : 1;
      x = block(x, `block${b + 1}.layer.${i}`, planes, stride, init);
    }
  });
  x = gap(relu(bn(x, 'bn1'), 'relu'), 'avgpool');
  const logits = linear(x, 'fc', classes, init, true);
  return tf.model({ name: `wrn28_${k}`, inputs: x0, outputs: logits });
}
