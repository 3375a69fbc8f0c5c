/**
 * The fast94 recipe: K. Jordan's airbench94 training (arXiv 2404.00498; KellerJordan/cifar10-
 * airbench, legacy/airbench94.py) for the airbench94 model (nn/models/airbench94.ts). Everything
 * that differs from the common loop (loop.ts) lives here:
 *
 * - the whitening conv's filters are set from the first 5,000 training images (whatever they are:
 *   clean or protected), its bias trained for the first 3 epochs only;
 * - loss: cross-entropy with label smoothing 0.2, summed over the batch (not averaged);
 * - Nesterov SGD, momentum 0.85, in the recipe's decoupled form: lr 11.5 and weight decay 0.0153
 *   per 1024 examples become lr' = lr / (1024 (1 + 1/(1 − μ))) and decay wd·batch/(1024 (1 +
 *   1/(1 − μ))) / lr' (PyTorch's weight_decay); BatchNorm offsets at 64 lr' with the same absolute
 *   decay; lr factor 0.2 → 1 over the first 23 % of the steps, then 1 → 0.07 (linear);
 * - lookahead: every 5 steps an average of every weight (BatchNorm statistics included) moves
 *   towards the weights with decay 0.95⁵ (step/total)³ and replaces them; after the last step the
 *   weights become the average;
 * - data: each training image mirrored at random once per run, the whole set mirrored again on odd
 *   epochs, and translated by up to 2 pixels (reflect padding) per image per epoch; batch 1024,
 *   last partial batch dropped; epochs may be fractional (9.9: ceil(steps per epoch × 9.9) steps);
 * - test: plain accuracy after each epoch, and at the end test-time augmentation level 2 (the
 *   logits of the image and its mirror, and of that pair translated one pixel up-left and
 *   down-right with reflect padding, weighted 1/2, 1/4, 1/4): the run's final accuracy.
 *
 * One deliberate difference from the published file: the lookahead average starts after the
 * whitening filters are set (the published code starts it before, keeping a 1e-4 share of the
 * random filters). bench/peer_airbench_torch.py is the PyTorch peer of this file.
 *
 * Checkpoints after every epoch (weights, the average, both optimisers' buffers); a stop between
 * epochs resumes exactly, a stop inside one resumes from the start of that epoch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { fail } from '../errors.js';
import { type Dataset, unitImages } from '../data/dataset.js';
import { datasetFingerprint, sha256 } from '../data/files.js';
import { exists } from '../output.js';
import { buildModel } from '../nn/models/index.js';
import { whiteningKernel } from '../nn/models/airbench94.js';
import { SGD, type SGDState } from '../nn/optim.js';
import { Rng } from '../nn/rng.js';
import { yieldToEvents } from '../nn/yield.js';
import {
  configDifferences,
  loadCheckpoint,
  saveCheckpoint,
  type Tensorish,
} from '../nn/checkpoint.js';
import { pgd, type PgdOptions } from '../nn/pgd.js';
import { robustRecord } from './robust.js';
import {
  attackAt,
  evaluate,
  type EpochRecord,
  type TrainConfig,
  type TrainHooks,
  type TrainRun,
} from './loop.js';

/** The recipe's hyperparameters (legacy/airbench94.py's `hyp`). */
export const FAST94 = {
  epochs: 9.9,
  batchSize: 1024,
  lr: 11.5,
  momentum: 0.85,
  weightDecay: 0.0153,
  biasScaler: 64,
  labelSmoothing: 0.2,
  whitenBiasEpochs: 3,
  translate: 2,
  whitenImages: 5000,
  lookaheadEvery: 5,
} as const;

/** Adversarial training's random starts in an epoch: a function of the seed and the epoch. */
export function fast94AttackRng(seed: number, epoch: number): Rng {
  return new Rng(seed * 1_000_003 + 900_001 + epoch);
}

/**
 * Sets airbench94's whitening filters from the first training images (the recipe's 5,000), with
 * `floor` added to the eigenvalues (the recipe's 5e-4; adversarial training's robustWhitenFloor).
 */
export function setWhitening(model: LayersModel, ds: Dataset, floor?: number): void {
  const nWhite = Math.min(FAST94.whitenImages, ds.labels.length);
  const white = whiteningKernel(ds.images, nWhite, ds.height, ds.width, ds.channels, floor);
  const whitenKernel = model.weights.find((w) => w.originalName === 'whiten/kernel');
  if (!whitenKernel) fail('airbench94 has no whiten/kernel');
  const t = tf.tensor(white.values, white.shape);
  whitenKernel.write(t);
  t.dispose();
}

/**
 * The attacked batch adversarial training trains on (a new tensor): the attack of `a` (N-FGSM for
 * the preset) on the training loss itself, the model in eval mode (as loop.ts).
 */
export function fast94Attack(
  model: LayersModel,
  x: tf.Tensor4D,
  labels: number[],
  classes: number,
  a: PgdOptions,
): tf.Tensor4D {
  return pgd(
    (xa) =>
      smoothedCrossEntropySum(
        model.apply(xa, { training: false }) as tf.Tensor,
        labels,
        classes,
        FAST94.labelSmoothing,
      ),
    x,
    a,
  );
}

/** The lr factor at a step of `total` (warm-up 0.2 → 1 over 23 %, then down to 0.07). */
export function fast94LrFactor(step: number, total: number): number {
  const warm = Math.floor(total * 0.23);
  if (step < warm) {
    const f = step / warm;
    return 0.2 * (1 - f) + f;
  }
  const f = (step - warm) / (total - warm);
  return 1 - f + 0.07 * f;
}

/** The lookahead decay after `step` of `total` steps: 0.95⁵ (step/total)³. */
export function lookaheadDecay(step: number, total: number): number {
  return 0.95 ** 5 * (step / total) ** 3;
}

/** PyTorch's SGD lr and weight_decay for the two groups, from the decoupled values. */
export function fast94Optimiser(
  c: Pick<TrainConfig, 'lr' | 'momentum' | 'weightDecay' | 'batchSize'>,
): {
  lr: number;
  wd: number;
  lrBias: number;
} {
  const kilostep = 1024 * (1 + 1 / (1 - c.momentum));
  const lr = c.lr / kilostep;
  const wd = (c.weightDecay * c.batchSize) / kilostep;
  return { lr, wd, lrBias: lr * FAST94.biasScaler };
}

/** Reflect index into [0, n) (no edge repeat), for offsets up to n − 1. */
function reflect(i: number, n: number): number {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

/**
 * Writes the training view of images `idx` into `out` (NHWC float in [0, 1]): image i mirrored
 * when `flip[i]` xor `mirrorAll`, translated by shift (dy, dx) with reflect padding (the crop at
 * (translate + dy, translate + dx) of the padded, mirrored image, mirrored again for `mirrorAll`).
 */
export function fast94View(
  ds: Dataset,
  idx: ArrayLike<number>,
  flip: Uint8Array,
  shifts: Int8Array,
  mirrorAll: boolean,
  out: Float32Array,
): void {
  const { height: h, width: w, channels: c } = ds;
  const size = h * w * c;
  for (let b = 0; b < idx.length; b++) {
    const i = idx[b];
    const dy = shifts[2 * i];
    const dx = shifts[2 * i + 1];
    const src = i * size;
    const dst = b * size;
    for (let y = 0; y < h; y++) {
      const sy = reflect(y + dy, h);
      for (let x = 0; x < w; x++) {
        const xc = mirrorAll ? w - 1 - x : x;
        let sx = reflect(xc + dx, w);
        if (flip[i]) sx = w - 1 - sx;
        const s = src + (sy * w + sx) * c;
        const d = dst + (y * w + x) * c;
        for (let k = 0; k < c; k++) out[d + k] = ds.images[s + k] / 255;
      }
    }
  }
}

/**
 * The six views of level-2 test-time augmentation of `m` images (NHWC floats): the images, their
 * mirrors, the images translated one pixel up-left (the crop at (0, 0) of the 1-pixel reflect-padded
 * image) and their mirrors, the same translated down-right (crop at (2, 2)) and their mirrors.
 */
export function ttaViews(
  x: Float32Array,
  m: number,
  h: number,
  w: number,
  c: number,
): Float32Array[] {
  const view = (dy: number, dx: number, mirror: boolean) => {
    const out = new Float32Array(x.length);
    for (let i = 0; i < m; i++)
      for (let y = 0; y < h; y++) {
        const sy = reflect(y + dy, h);
        for (let xx = 0; xx < w; xx++) {
          const sx = reflect((mirror ? w - 1 - xx : xx) + dx, w);
          const s = ((i * h + sy) * w + sx) * c;
          const d = ((i * h + y) * w + xx) * c;
          for (let k = 0; k < c; k++) out[d + k] = x[s + k];
        }
      }
    return out;
  };
  return [
    x,
    view(0, 0, true),
    view(-1, -1, false),
    view(-1, -1, true),
    view(1, 1, false),
    view(1, 1, true),
  ];
}

/**
 * The logits of level-2 test-time augmentation for m images: ½ of the mean over the image and its
 * mirror, plus ¼ of that mean for each of the two translations (the reference's weights).
 */
export function ttaLogits(
  model: LayersModel,
  x: Float32Array,
  m: number,
  h: number,
  w: number,
  c: number,
): tf.Tensor {
  const views = ttaViews(x, m, h, w, c);
  const weights = [0.25, 0.25, 0.125, 0.125, 0.125, 0.125];
  return tf.tidy(() =>
    tf.addN(
      views.map((v, k) =>
        tf.mul(
          weights[k],
          model.apply(tf.tensor4d(v, [m, h, w, c]), { training: false }) as tf.Tensor,
        ),
      ),
    ),
  );
}

/** Accuracy with level-2 test-time augmentation, in batches. */
export async function evaluateTta(model: LayersModel, ds: Dataset, batch = 500): Promise<number> {
  const n = ds.labels.length;
  let correct = 0;
  for (let s = 0; s < n; s += batch) {
    await yieldToEvents();
    const m = Math.min(batch, n - s);
    const x = unitImages(ds, s, m);
    const pred = tf.tidy(() =>
      tf.argMax(ttaLogits(model, x, m, ds.height, ds.width, ds.channels), -1),
    );
    const p = await pred.data();
    pred.dispose();
    for (let k = 0; k < m; k++) if (p[k] === ds.labels[s + k]) correct++;
  }
  return correct / n;
}

/** Summed cross-entropy with label smoothing ε: targets (1 − ε)·one-hot + ε/classes. */
export function smoothedCrossEntropySum(
  logits: tf.Tensor,
  labels: ArrayLike<number>,
  classes: number,
  smoothing: number,
): tf.Scalar {
  return tf.tidy(() => {
    const t = new Float32Array(labels.length * classes).fill(smoothing / classes);
    for (let i = 0; i < labels.length; i++) t[i * classes + labels[i]] += 1 - smoothing;
    const targets = tf.tensor2d(t, [labels.length, classes]);
    return tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)))) as tf.Scalar;
  });
}

/**
 * The run's random draws, a function of the seed only: one mirror flag per image for the run,
 * and per epoch each image's shift (dy, dx), each uniform in [−2, 2], then the order.
 */
export function fast94Flips(seed: number, n: number): Uint8Array {
  const rng = new Rng(seed * 1_000_003 + 77_777);
  const flip = new Uint8Array(n);
  for (let i = 0; i < n; i++) flip[i] = rng.uniform() < 0.5 ? 1 : 0;
  return flip;
}

export function fast94Epoch(
  seed: number,
  epoch: number,
  n: number,
): { shifts: Int8Array; order: Int32Array } {
  const rng = new Rng(seed * 1_000_003 + epoch + 1);
  const t = FAST94.translate;
  const shifts = new Int8Array(2 * n);
  for (let k = 0; k < shifts.length; k++) shifts[k] = rng.int(2 * t + 1) - t;
  return { shifts, order: rng.permutation(n) };
}

async function read(model: LayersModel): Promise<Tensorish[]> {
  return Promise.all(
    model.weights.map(async (w) => {
      const t = w.read();
      return { name: w.originalName, shape: t.shape, values: (await t.data()) as Float32Array };
    }),
  );
}

/** Trains airbench94 with the fast94 recipe (see the file's comment); loop.ts's `train` contract. */
export async function trainFast94(
  config: TrainConfig,
  data: { train: Dataset; test: Dataset },
  checkpointDir: string | null,
  hooks: TrainHooks = {},
): Promise<TrainRun> {
  const { train: ds, test } = data;
  if (config.model !== 'airbench94')
    fail(`the fast94 recipe trains airbench94, not ${config.model}`);
  if (!(config.epochs > 0)) fail(`epochs must be positive (got ${config.epochs})`);
  if (!Number.isInteger(config.batchSize) || config.batchSize < 1)
    fail(`batch size must be a positive integer (got ${config.batchSize})`);
  if (ds.labels.length < config.batchSize)
    fail(
      `batch size ${config.batchSize} is larger than the training set (${ds.labels.length} images)`,
    );
  const classes = ds.classNames.length;
  const model = buildModel('airbench94', ds, classes, { seed: config.seed });
  const { lr, wd, lrBias } = fast94Optimiser(config);
  const trainable = model.trainableWeights;
  const isShift = (name: string) => name.endsWith('/beta');
  const vars = new Map(trainable.map((w) => [w.originalName, w.read() as tf.Variable]));
  const pick = (f: (n: string) => boolean) => Object.fromEntries([...vars].filter(([n]) => f(n)));
  const shiftOpt = new SGD(pick(isShift), {
    momentum: config.momentum,
    weightDecay: wd / lrBias,
    nesterov: true,
  });
  const otherOpt = new SGD(
    pick((n) => !isShift(n)),
    { momentum: config.momentum, weightDecay: wd / lr, nesterov: true },
  );
  setWhitening(model, ds, config.adversarial?.whitenFloor);
  const ema = model.weights.map((w) => tf.variable(w.read().clone(), false));

  const n = ds.labels.length;
  const stepsPerEpoch = Math.floor(n / config.batchSize);
  const total = Math.ceil(stepsPerEpoch * config.epochs);
  const epochs = Math.ceil(total / stepsPerEpoch);
  const flip = fast94Flips(config.seed, n);

  let history: EpochRecord[] = [];
  let startEpoch = 0;
  const dataset = checkpointDir
    ? sha256(Buffer.from(datasetFingerprint(ds) + datasetFingerprint(test)))
    : '';
  const split = (s: SGDState, names: string[]): SGDState => ({
    step: s.step,
    buffers: Object.fromEntries(Object.entries(s.buffers).filter(([k]) => names.includes(k))),
  });
  if (checkpointDir && (await exists(checkpointDir))) {
    const ck = await loadCheckpoint<TrainConfig, EpochRecord[]>(checkpointDir);
    const diff = configDifferences(ck.meta.config, config);
    if (diff.length > 0)
      fail(
        `${checkpointDir}: cannot resume, the checkpoint was made with other settings: ` +
          `${diff.join('; ')} (use the same settings, or --force to start over)`,
      );
    if (ck.meta.dataset !== dataset)
      fail(
        `${checkpointDir}: cannot resume, the checkpoint belongs to other training or test data`,
      );
    const own = ck.weights.filter((w) => !w.name.startsWith('ema:'));
    const avg = ck.weights.filter((w) => w.name.startsWith('ema:'));
    if (own.length !== model.weights.length || avg.length !== ema.length)
      fail(`${checkpointDir}: checkpoint does not fit airbench94 (weights and their average)`);
    model.weights.forEach((w, i) => {
      if (own[i].name !== w.originalName || own[i].shape.join() !== w.shape.join())
        fail(`${checkpointDir}: checkpoint weight ${own[i].name} does not fit ${w.originalName}`);
      w.write(tf.tensor(own[i].values, own[i].shape));
      ema[i].assign(tf.tensor(avg[i].values, avg[i].shape));
    });
    shiftOpt.loadState(split(ck.optimizer, shiftOpt.names));
    otherOpt.loadState(split(ck.optimizer, otherOpt.names));
    history = ck.meta.history;
    startEpoch = ck.meta.epoch;
  }
  const save = async (epoch: number) => {
    if (!checkpointDir) return;
    const weights = await read(model);
    const avg = await Promise.all(
      ema.map(async (v, i) => ({
        name: `ema:${weights[i].name}`,
        shape: v.shape,
        values: (await v.data()) as Float32Array,
      })),
    );
    const [a, b] = [await shiftOpt.state(), await otherOpt.state()];
    await saveCheckpoint(
      checkpointDir,
      {
        config,
        epoch,
        step: 0,
        rng: new Rng(config.seed).state(),
        running: { loss: 0, correct: 0, seen: 0, seconds: 0 },
        history,
        dataset,
      },
      [...weights, ...avg],
      { step: a.step, buffers: { ...a.buffers, ...b.buffers } },
    );
  };
  const lookahead = (decay: number) =>
    tf.tidy(() =>
      model.weights.forEach((w, i) => {
        const next = tf.add(tf.mul(ema[i], decay), tf.mul(w.read(), 1 - decay));
        ema[i].assign(next);
        w.write(next.clone());
      }),
    );
  const size = ds.height * ds.width * ds.channels;
  const x = new Float32Array(config.batchSize * size);
  const shape: [number, number, number, number] = [
    config.batchSize,
    ds.height,
    ds.width,
    ds.channels,
  ];
  const whitenBiasName = 'whiten/bias';
  let step = startEpoch * stepsPerEpoch;
  const dispose = () => {
    shiftOpt.dispose();
    otherOpt.dispose();
    tf.dispose(ema);
    model.dispose();
  };
  for (let epoch = startEpoch; epoch < epochs; epoch++) {
    const { shifts, order } = fast94Epoch(config.seed, epoch, n);
    const stepVars = [...vars]
      .filter(([name]) => epoch < FAST94.whitenBiasEpochs || name !== whitenBiasName)
      .map(([, v]) => v);
    const names = new Map([...vars].map(([k, v]) => [v.name, k]));
    const attackRng = fast94AttackRng(config.seed, epoch);
    let loss = 0;
    let correct = 0;
    let seen = 0;
    let seconds = 0;
    for (let s = 0; s < stepsPerEpoch && step < total; s++) {
      await yieldToEvents();
      if (hooks.shouldStop?.()) {
        dispose();
        return { config, history, finished: false };
      }
      const t0 = performance.now();
      const idx = order.subarray(s * config.batchSize, (s + 1) * config.batchSize);
      const labels = Array.from(idx, (i) => ds.labels[i]);
      fast94View(ds, idx, flip, shifts, epoch % 2 === 1, x);
      const f = fast94LrFactor(step, total);
      const { value, predicted } = tf.tidy(() => {
        let kept: tf.Tensor | null = null;
        let input = tf.tensor4d(x, shape);
        if (config.adversarial) {
          const a = attackAt(config.adversarial, step, stepsPerEpoch);
          input = fast94Attack(model, input, labels, classes, { ...a, rng: attackRng });
        }
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.apply(input, { training: true }) as tf.Tensor;
          kept = tf.keep(tf.argMax(logits, -1));
          return smoothedCrossEntropySum(logits, labels, classes, FAST94.labelSmoothing);
        }, stepVars);
        const byName = (want: boolean) =>
          Object.fromEntries(
            Object.entries(grads)
              .map(([k, g]) => [names.get(k) ?? k, g] as const)
              .filter(([k]) => isShift(k) === want),
          );
        shiftOpt.step(byName(true), lrBias * f);
        otherOpt.step(byName(false), lr * f);
        return { value, predicted: kept as unknown as tf.Tensor };
      });
      const [lv, pred] = await Promise.all([value.data(), predicted.data()]);
      tf.dispose([value, predicted]);
      step++;
      if (step % FAST94.lookaheadEvery === 0) lookahead(lookaheadDecay(step, total));
      if (step >= total) lookahead(1);
      if (!Number.isFinite(lv[0])) {
        dispose();
        fail(`epoch ${epoch + 1} step ${s + 1}: loss is ${lv[0]}; stopping`);
      }
      for (let k = 0; k < pred.length; k++) if (pred[k] === labels[k]) correct++;
      loss += lv[0];
      seen += idx.length;
      seconds += (performance.now() - t0) / 1000;
      hooks.onStep?.(seen, stepsPerEpoch * config.batchSize, epoch);
    }
    const record: EpochRecord = {
      epoch: epoch + 1,
      lr: lr * fast94LrFactor(step - 1, total),
      trainLoss: loss / seen,
      trainAccuracy: correct / seen,
      testAccuracy: await evaluate(model, test, 500),
      seconds,
      imagesPerSecond: seen / seconds,
    };
    if (step >= total) {
      const t0 = performance.now();
      record.ttaAccuracy = await evaluateTta(model, test, 500);
      record.ttaSeconds = (performance.now() - t0) / 1000;
      if (config.adversarial) {
        const robust = await robustRecord(model, test, config.seed, () => false);
        Object.assign(record, robust);
      }
    }
    history.push(record);
    await hooks.onEpoch?.(record);
    await save(epoch + 1);
  }
  dispose();
  return { config, history, finished: true };
}
