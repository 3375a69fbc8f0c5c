/**
 * DenseNet-121 for CIFAR, as in kuangliu/pytorch-cifar `models/densenet.py` (growth rate 32,
 * blocks [6, 12, 24, 16], reduction 0.5):
 *
 *   conv1 3×3 → 2·growth (64), bias-free, no BN/pool after it ·
 *   dense1 · trans1 · dense2 · trans2 · dense3 · trans3 · dense4 · BN · relu · average pool ·
 *   linear →classes
 *
 * Bottleneck (pre-activation): BN · relu · conv1×1 → 4·growth · BN · relu · conv3×3 → growth, output
 * concatenated as [new, input] on channels. Transition: BN · relu · conv1×1 → ⌊planes·0.5⌋ ·
 * avg pool 2×2. All convs are bias-free. CIFAR-10: 6,956,298 trainable parameters.
 *
 * Deviations, both invisible at 32×32: the transitions' average pools use ceil mode on odd sizes, and
 * the reference's final `avg_pool2d(out, 4)` is global average pooling, so any input size works.
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
  pool2,
  relu,
  type BuildOptions,
  type InputShape,
  type Sym,
} from './layers.js';

const GROWTH = 32;
const BLOCKS = [6, 12, 24, 16] as const;
const REDUCTION = 0.5;

function bottleneck(x: Sym, name: string, init: Init): Sym {
  let out = conv(relu(bn(x, `${name}.bn1`), `${name}.relu1`), `${name}.conv1`, 4 * GROWTH, 1, init);
  out = conv(relu(bn(out, `${name}.bn2`), `${name}.relu2`), `${name}.conv2`, GROWTH, 3, init);
  return ap(tf.layers.concatenate({ name: `${name}.cat`, axis: -1 }), [out, x]);
}

function transition(x: Sym, name: string, outPlanes: number, init: Init): Sym {
  const out = conv(relu(bn(x, `${name}.bn`), `${name}.relu`), `${name}.conv`, outPlanes, 1, init);
  return pool2(out, `${name}.pool`, 'avg');
}

export function densenet121(
  input: InputShape,
  classes: number,
  options: BuildOptions = {},
): tf.LayersModel {
  const x0 = modelInput(input, classes);
  const init = new Init(options.seed);
  let planes = 2 * GROWTH;
  let x = conv(x0, 'conv1', planes, 3, init);
  BLOCKS.forEach((n, b) => {
    for (let i = 0; i < n; i++) x = bottleneck(x, `dense${b + 1}.${i}`, init);
    planes += n * GROWTH;
    if (b < BLOCKS.length - 1) {
      planes = Math.floor(planes * REDUCTION);
      x = transition(x, `trans${b + 1}`, planes, init);
    }
  });
  x = gap(relu(bn(x, 'bn'), 'relu'), 'avgpool');
  const logits = linear(x, 'linear', classes, init);
  return tf.model({ name: 'densenet121', inputs: x0, outputs: logits });
}
