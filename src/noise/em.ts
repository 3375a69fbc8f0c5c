/**
 * Error-minimizing noise (Huang et al., "Unlearnable Examples", ICLR 2021; the noise under the OPS
 * paper's CIFAR-10-S), min-min:
 * every round (a) trains a surrogate for `trainSteps` batches on the currently perturbed training
 * set, then (b) moves each image's noise by `steps` projected sign steps that *descend* the
 * surrogate's loss on the true label (L∞ ball of radius ε, image kept in [0, 1]), then (c) measures
 * the surrogate's accuracy on the whole perturbed set. It stops once that accuracy reaches
 * `stopAccuracy`, or after `maxRounds`. Sample-wise noise has one δ per image; class-wise one δ per
 * class. The surrogate runs in training mode for (a) and in inference mode for (b) and (c), as in
 * the authors' description.
 *
 * Only tfjs ops run the model, so any engine `initEngine` starts works. State lives in plain
 * arrays and numbers ({@link EmState}) so that ./checkpoint.ts can save it and a resumed run
 * continues exactly where it stopped.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type Dataset, imageSize } from '../data/dataset.js';
import { fail } from '../errors.js';
import { buildModel } from '../nn/models/index.js';
import { SGD, type SGDState } from '../nn/optim.js';
import type { BackendName } from '../nn/engine.js';
import { MICRO_BATCH } from '../nn/micro-batch.js';
import { yieldToEvents } from '../nn/yield.js';
import { crossEntropy } from '../nn/loss.js';
import { Rng } from '../nn/rng.js';
import { checkEpsilon } from './bounds.js';
import { classStep, expandClassNoise } from './classwise.js';
import { descendBatch } from './descend.js';
import type { EmConfig, EmRound } from './em-config.js';
import { createNoisePool, type NoisePool } from './pool.js';
import { randomNoise } from './random.js';

export { EM_DEFAULTS, EM_MODES, type EmConfig, type EmMode, type EmRound } from './em-config.js';

/** Where a generation stands; with the noise, the weights and the optimiser, a checkpoint. */
export interface EmState {
  /** Rounds finished. */
  round: number;
  /** Surrogate steps of the round under way are done. */
  trained: boolean;
  /** Noise-pass batches done in the round under way. */
  batch: number;
  /** Position in the surrogate's shuffled passes over the data. */
  trainPass: number;
  trainCursor: number;
  trainLoss: number;
  /** Seconds spent in rounds finished and in the one under way, and when that one began. */
  seconds: number;
  roundStarted: number;
  history: EmRound[];
  stopped: 'accuracy' | 'max-rounds' | null;
}

export type EmPhase = 'train' | 'noise' | 'eval';

export interface EmHooks {
  onProgress?: (phase: EmPhase, done: number, total: number, round: number) => void;
  onRound?: (r: EmRound) => void;
  /** Checked between batches: when true, `save` is called and generation returns unfinished. */
  shouldStop?: () => boolean;
  /** Called at the end of each round, on stop, and every `saveEverySeconds` in a noise pass. */
  save?: (snapshot: EmSnapshot) => Promise<void>;
  saveEverySeconds?: number;
  /**
   * Sample-wise noise passes on this many worker threads, each with its own `backend` engine
   * (default 1: this thread). The noise does not depend on it, up to float rounding.
   */
  workers?: number;
  backend?: BackendName;
}

/** The whole state of a generation, for a checkpoint. */
export interface EmSnapshot {
  config: EmConfig;
  state: EmState;
  noise: Float32Array;
  weights: Array<{ name: string; shape: number[]; values: Float32Array }>;
  optimizer: SGDState;
}

export interface EmResult {
  /** Per-image δ, N×H×W×C, in [0, 1] pixel units: clean/255 + δ is in [0, 1], |δ| ≤ ε. */
  noise: Float32Array;
  /** Class-wise mode: the K×H×W×C class noises. */
  classNoise: Float32Array | null;
  state: EmState;
  /** False when stopped by `shouldStop` before a stopping rule was met. */
  finished: boolean;
}

export function checkEmConfig(c: EmConfig, train: Dataset): void {
  checkEpsilon(c.epsilon, '--epsilon');
  for (const [flag, v] of [
    ['--em-steps', c.steps],
    ['--em-train-steps', c.trainSteps],
    ['--em-batch-size', c.batchSize],
    ['--em-noise-batch', c.noiseBatch],
    ['--max-rounds', c.maxRounds],
  ] as const)
    if (!Number.isInteger(v) || v < 1) fail(`${flag} must be a positive integer (got ${v})`);
  if (!(c.stepSize > 0 && c.stepSize < 1))
    fail(`--em-step-size must be in (0, 1) (got ${c.stepSize})`);
  if (!(c.lr > 0)) fail(`--em-lr must be positive (got ${c.lr})`);
  if (!(c.stopAccuracy > 0 && c.stopAccuracy <= 1))
    fail(`--stop-accuracy must be in (0, 1] (got ${c.stopAccuracy})`);
  if (train.labels.length < c.batchSize)
    fail(`--em-batch-size ${c.batchSize} is larger than the training set (${train.labels.length})`);
}

export function freshState(): EmState {
  return {
    round: 0,
    trained: false,
    batch: 0,
    trainPass: 0,
    trainCursor: 0,
    trainLoss: 0,
    seconds: 0,
    roundStarted: 0,
    history: [],
    stopped: null,
  };
}

/** The starting noise: uniform in [−ε, ε] (per image, or per class), seeded. */
export function initialNoise(train: Dataset, c: EmConfig): Float32Array {
  if (c.mode === 'samplewise') return randomNoise(train.images, c.epsilon, c.seed);
  const rng = new Rng(c.seed);
  const k = train.classNames.length * imageSize(train);
  return Float32Array.from({ length: k }, () => (2 * rng.uniform() - 1) * c.epsilon);
}

/** The order of the surrogate's pass `p` over the data: a function of the seed only. */
function passOrder(seed: number, pass: number, n: number): Int32Array {
  return new Rng(seed * 1_000_003 + pass + 1).permutation(n);
}

/**
 * Generates EM noise for `train` (resuming `resume` when given: a snapshot saved by `hooks.save`).
 */
export async function generateEm(
  train: Dataset,
  config: EmConfig,
  hooks: EmHooks = {},
  resume: EmSnapshot | null = null,
): Promise<EmResult> {
  checkEmConfig(config, train);
  const c = config;
  const n = train.labels.length;
  const size = imageSize(train);
  const classes = train.classNames.length;
  const shape: [number, number, number] = [train.height, train.width, train.channels];
  const model: LayersModel = buildModel(c.model, train, classes, { seed: c.seed });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const own = new Map(model.trainableWeights.map((w, i) => [vars[i].name, w.originalName]));
  const sgd = new SGD(
    Object.fromEntries(model.trainableWeights.map((w, i) => [w.originalName, vars[i]])),
    { momentum: c.momentum, weightDecay: c.weightDecay },
  );
  let noise: Float32Array;
  let state: EmState;
  if (resume) {
    noise = resume.noise;
    state = structuredClone(resume.state);
    const fits =
      resume.weights.length === model.weights.length &&
      resume.weights.every(
        (w, i) =>
          w.name === model.weights[i].originalName &&
          w.shape.join() === model.weights[i].shape.join(),
      );
    if (!fits) fail(`EM checkpoint: its surrogate weights do not fit a ${c.model}; refusing it`);
    if (
      noise.length !== (c.mode === 'classwise' ? classes : n) * size ||
      state.batch > Math.ceil(n / c.noiseBatch)
    )
      fail('EM checkpoint: its noise or progress does not fit this training set; refusing it');
    const tensors = resume.weights.map((w) => tf.tensor(w.values, w.shape));
    model.setWeights(tensors);
    tf.dispose(tensors);
    try {
      sgd.loadState(resume.optimizer);
    } catch (e) {
      fail(`EM checkpoint: ${(e as Error).message}; refusing it`);
    }
  } else {
    noise = initialNoise(train, c);
    state = freshState();
  }
  const classwise = c.mode === 'classwise';
  const snapshot = async (): Promise<EmSnapshot> => ({
    config: c,
    state: structuredClone(state),
    noise,
    weights: await Promise.all(
      model.weights.map(async (w) => ({
        name: w.originalName,
        shape: w.shape as number[],
        values: (await w.read().data()) as Float32Array,
      })),
    ),
    optimizer: await sgd.state(),
  });
  const pool: NoisePool | null =
    !classwise && (hooks.workers ?? 1) > 1
      ? await createNoisePool(model, hooks.workers ?? 1, hooks.backend ?? 'auto')
      : null;
  const finish = async (finished: boolean): Promise<EmResult> => {
    await pool?.close();
    const perImage = classwise ? expandClassNoise(train, noise) : noise;
    sgd.dispose();
    model.dispose();
    return { noise: perImage, classNoise: classwise ? noise : null, state, finished };
  };

  /** Perturbed images [from, from + m) of `idx` (or of the identity order) into `x`. */
  const fill = (x: Float32Array, idx: ArrayLike<number>, from: number, m: number) => {
    for (let k = 0; k < m; k++) {
      const i = idx[from + k];
      const src = i * size;
      const nz = classwise ? train.labels[i] * size : src;
      for (let j = 0; j < size; j++) {
        const v = train.images[src + j] / 255 + noise[nz + j];
        x[k * size + j] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  };
  const labelsOf = (idx: ArrayLike<number>, from: number, m: number) =>
    tf.oneHot(
      tf.tensor1d(
        Int32Array.from({ length: m }, (_, k) => train.labels[idx[from + k]]),
        'int32',
      ),
      classes,
    );
  const ids = Int32Array.from({ length: n }, (_, i) => i);

  const trainBatch = new Float32Array(c.batchSize * size);
  const nb = Math.ceil(n / c.noiseBatch);
  const noiseBatch = new Float32Array(c.noiseBatch * size);
  let lastSave = performance.now();
  let orderPass = -1;
  let order: Int32Array<ArrayBufferLike> = new Int32Array(0);
  const micro = Math.min(c.batchSize, MICRO_BATCH[c.model] ?? c.batchSize);
  const params = { ...c, maxBatch: MICRO_BATCH[c.model] };

  while (state.round < c.maxRounds && state.stopped === null) {
    const t0 = performance.now();
    const secondsBefore = state.seconds;
    const elapsed = () => secondsBefore + (performance.now() - t0) / 1000;
    if (hooks.shouldStop?.()) {
      await hooks.save?.(await snapshot());
      return await finish(false);
    }
    if (!state.trained) {
      state.roundStarted = secondsBefore;
      // (a) the surrogate learns the currently perturbed data
      let lossSum = 0;
      for (let s = 0; s < c.trainSteps; s++) {
        // Lets a signal handler run; the round's surrogate steps finish before a stop.
        await yieldToEvents();
        if (state.trainCursor + c.batchSize > n) {
          state.trainPass++;
          state.trainCursor = 0;
        }
        if (orderPass !== state.trainPass) {
          order = passOrder(c.seed, state.trainPass, n);
          orderPass = state.trainPass;
        }
        fill(trainBatch, order, state.trainCursor, c.batchSize);
        // Large models run the batch in micro-batches (the wasm heap), gradients averaged.
        const lossT = tf.tidy(() => {
          let total: tf.Tensor = tf.scalar(0);
          let sums: tf.NamedTensorMap = {};
          for (let a = 0; a < c.batchSize; a += micro) {
            const m = Math.min(micro, c.batchSize - a);
            const x = tf.tensor4d(trainBatch.subarray(a * size, (a + m) * size), [m, ...shape]);
            const y = labelsOf(order, state.trainCursor + a, m);
            const { value, grads } = tf.variableGrads(
              () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
              vars,
            );
            const w = m / c.batchSize;
            const next: tf.NamedTensorMap = {};
            for (const [k, g] of Object.entries(grads))
              next[own.get(k) ?? k] =
                a === 0 ? tf.mul(g, w) : tf.add(sums[own.get(k) ?? k], tf.mul(g, w));
            sums = next;
            total = tf.add(total, tf.mul(value, w));
          }
          sgd.step(sums, c.lr);
          return total;
        });
        // Read asynchronously: a GPU engine (webgpu) cannot read synchronously in Node.
        const loss = (await lossT.data())[0];
        lossT.dispose();
        if (!Number.isFinite(loss))
          fail(`EM round ${state.round + 1}: surrogate loss is ${loss}; try a smaller --em-lr`);
        lossSum += loss;
        state.trainCursor += c.batchSize;
        hooks.onProgress?.('train', s + 1, c.trainSteps, state.round);
      }
      state.trainLoss = lossSum / c.trainSteps;
      state.trained = true;
    }
    // (b) the noise descends the surrogate's loss
    await pool?.setWeights(model);
    for (; state.batch < nb; state.batch++) {
      await yieldToEvents();
      if (hooks.shouldStop?.()) {
        state.seconds = elapsed();
        await hooks.save?.(await snapshot());
        return await finish(false);
      }
      const from = state.batch * c.noiseBatch;
      const m = Math.min(c.noiseBatch, n - from);
      fill(noiseBatch, ids, from, m);
      if (classwise) await classStep(model, train, noise, from, m, c);
      else {
        const clean = train.images.subarray(from * size, (from + m) * size);
        const start = noiseBatch.subarray(0, m * size);
        const labels = train.labels.subarray(from, from + m);
        const dims: [number, number, number, number] = [m, ...shape];
        const moved = pool
          ? await pool.descend(clean, start, labels, dims, classes, params)
          : await descendBatch(model, clean, start, labels, dims, classes, params);
        noise.set(moved, from * size);
      }
      hooks.onProgress?.('noise', from + m, n, state.round);
      const every = hooks.saveEverySeconds;
      if (hooks.save && every !== undefined && (performance.now() - lastSave) / 1000 >= every) {
        state.batch++;
        state.seconds = elapsed();
        await hooks.save(await snapshot());
        state.batch--;
        lastSave = performance.now();
      }
    }
    // (c) how well the surrogate fits the perturbed data (null: stopped; a resume measures again)
    const measured = await evaluatePerturbed(
      model,
      n,
      c.noiseBatch,
      noiseBatch,
      shape,
      fill,
      labelsOf,
      ids,
      (d) => hooks.onProgress?.('eval', d, n, state.round),
      () => !!hooks.shouldStop?.(),
    );
    if (measured === null) {
      state.seconds = elapsed();
      await hooks.save?.(await snapshot());
      return await finish(false);
    }
    const { loss, accuracy } = measured;
    const record: EmRound = {
      round: state.round + 1,
      trainLoss: state.trainLoss,
      loss,
      accuracy,
      seconds: elapsed() - (state.roundStarted ?? secondsBefore),
    };
    state.history.push(record);
    state.round++;
    state.trained = false;
    state.batch = 0;
    state.seconds = elapsed();
    if (accuracy >= c.stopAccuracy) state.stopped = 'accuracy';
    else if (state.round >= c.maxRounds) state.stopped = 'max-rounds';
    hooks.onRound?.(record);
    await hooks.save?.(await snapshot());
    lastSave = performance.now();
  }
  if (state.stopped === null) state.stopped = 'max-rounds';
  return await finish(true);
}

async function evaluatePerturbed(
  model: LayersModel,
  n: number,
  batch: number,
  buf: Float32Array,
  shape: [number, number, number],
  fill: (x: Float32Array, idx: ArrayLike<number>, from: number, m: number) => void,
  labelsOf: (idx: ArrayLike<number>, from: number, m: number) => tf.Tensor,
  ids: ArrayLike<number>,
  progress: (done: number) => void,
  stop: () => boolean,
): Promise<{ loss: number; accuracy: number } | null> {
  let correct = 0;
  let lossSum = 0;
  const size = shape[0] * shape[1] * shape[2];
  for (let from = 0; from < n; from += batch) {
    await yieldToEvents();
    if (stop()) return null;
    const m = Math.min(batch, n - from);
    fill(buf, ids, from, m);
    const [lt, kt] = tf.tidy(() => {
      const y = labelsOf(ids, from, m);
      const logits = model.apply(tf.tensor4d(buf.subarray(0, m * size), [m, ...shape]), {
        training: false,
      }) as tf.Tensor;
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(y, -1)), 'float32'));
      return [crossEntropy(logits, y), hits];
    });
    const [l, k] = await Promise.all([lt.data(), kt.data()]);
    tf.dispose([lt, kt]);
    lossSum += l[0] * m;
    correct += k[0];
    progress(from + m);
  }
  return { loss: lossSum / n, accuracy: correct / n };
}
