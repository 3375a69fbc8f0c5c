/**
 * The training loop, top to bottom: build the model, then for each epoch shuffle, augment, (attack,)
 * step SGD, and measure clean-test accuracy. Checkpoints after every epoch (and when stopped) let a
 * killed run resume to the same result as an uninterrupted one.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { fail } from '../errors.js';
import { type Dataset, unitImages } from '../data/dataset.js';
import { buildModel, type ModelName } from '../nn/models/index.js';
import { SGD } from '../nn/optim.js';
import { scheduleFor, type ScheduleName } from '../nn/schedule.js';
import { crossEntropy } from '../nn/loss.js';
import { MICRO_BATCH } from '../nn/micro-batch.js';
import { usePrecision } from '../nn/engine.js';
import { yieldToEvents } from '../nn/yield.js';
import { pgd } from '../nn/pgd.js';
import { type Batch, type Strategy, makeBatch, mixTargets } from './augment.js';
import { epochCrops } from './countermeasures.js';
import { createParallelTrainer, type ParallelTrainer } from '../nn/backends/wasm/parallel.js';
import { datasetFingerprint, sha256 } from '../data/files.js';
import { exists } from '../output.js';
import {
  configDifferences,
  loadCheckpoint,
  saveCheckpoint,
  type Tensorish,
} from '../nn/checkpoint.js';
import { Rng, type RngState } from '../nn/rng.js';
import { robustRecord } from './robust.js';

export interface AttackConfig {
  epsilon: number;
  step: number;
  steps: number;
  /**
   * ε warm-up: ε (and the PGD step with it) grows linearly from 0 to its value over this many
   * epochs, then stays. Absent or 0: the full ε from the first step (the paper's protocol).
   */
  warmupEpochs?: number;
  /** Radius of the random start (absent: ε, PGD's); N-FGSM: 2ε. */
  noise?: number;
  /** false: iterates are not projected onto the ε-ball, only onto [0, 1] (N-FGSM). Absent: true. */
  project?: boolean;
  /** fast94: the floor added to the whitening's eigenvalues (robustWhitenFloor). Absent: 5e-4. */
  whitenFloor?: number;
}

/** The attack's ε and step at a global step index (ε warm-up, AttackConfig.warmupEpochs). */
export function attackAt(a: AttackConfig, step: number, stepsPerEpoch: number): AttackConfig {
  const warm = (a.warmupEpochs ?? 0) * stepsPerEpoch;
  const f = warm > 0 ? Math.min(1, (step + 1) / warm) : 1;
  return {
    ...a,
    epsilon: a.epsilon * f,
    step: a.step * f,
    ...(a.noise !== undefined ? { noise: a.noise * f } : {}),
  };
}

/** Everything that decides the result; a resumed run must have the same. */
export interface TrainConfig {
  model: ModelName;
  strategy: Strategy;
  /** L∞ PGD adversarial training, or null for none. */
  adversarial: AttackConfig | null;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: ScheduleName;
  /** multistep: epochs at which lr ×gamma. */
  milestones: number[];
  gamma: number;
  seed: number;
  /** WRN widening factor. */
  widen?: number;
  /** A countermeasure applied to the training images before training (src/train/countermeasures.ts). */
  countermeasure?: string;
  /**
   * Worker threads that share each batch (data parallel, one wasm engine each, gradients
   * averaged); 1 or absent trains in this thread. Adversarial training runs in this thread.
   */
  workers?: number;
  /**
   * bf16 compute in the native backend's convolutions and matrix products (see
   * src/nn/names.ts); absent means fp32, so fp32 configs (and the audit cells they identify)
   * read as before the setting existed.
   */
  precision?: 'bf16';
  /** A recipe with its own loop (train/fast94.ts) instead of this file's; absent: this loop. */
  recipe?: 'fast94';
}

export interface EpochRecord {
  epoch: number;
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
  seconds: number;
  imagesPerSecond: number;
  /** Test accuracy with test-time augmentation, where the recipe has it (fast94: the last epoch). */
  ttaAccuracy?: number;
  ttaSeconds?: number;
  /**
   * Adversarially trained runs, the last epoch: accuracy under a PGD-20 attack (ε = 8/255, step
   * 2/255, random start, eval mode) on the first `robustImages` clean test images: the evidence
   * that adversarial training worked.
   */
  robustAccuracy?: number;
  robustImages?: number;
  robustSeconds?: number;
}

export interface TrainHooks {
  /** After each step: images done in the epoch, images per epoch, epoch index. */
  onStep?: (done: number, total: number, epoch: number) => void;
  onEpoch?: (r: EpochRecord) => void | Promise<void>;
  /**
   * Checked between steps and between evaluation batches (the loop yields to the event loop
   * before each check, so a signal handler can set it); when true, a checkpoint is written and
   * training stops.
   */
  shouldStop?: () => boolean;
}

export interface TrainRun {
  config: TrainConfig;
  history: EpochRecord[];
  /** False when stopped early (shouldStop). */
  finished: boolean;
}

/** The model's weights as plain arrays (read asynchronously: a GPU backend cannot read synchronously). */
async function weightsOf(model: LayersModel): Promise<Tensorish[]> {
  return Promise.all(
    model.weights.map(async (w) => {
      const t = w.read();
      return { name: w.originalName, shape: t.shape, values: (await t.data()) as Float32Array };
    }),
  );
}

function setWeights(model: LayersModel, saved: Tensorish[], dir: string): void {
  if (saved.length !== model.weights.length)
    fail(
      `${dir}: checkpoint has ${saved.length} weight tensors, the model ${model.weights.length}`,
    );
  const tensors = saved.map((s, i) => {
    const w = model.weights[i];
    if (s.name !== w.originalName || s.shape.join() !== w.shape.join())
      fail(
        `${dir}: checkpoint weight ${s.name} [${s.shape}] does not fit ${w.originalName} [${w.shape}]`,
      );
    return tf.tensor(s.values, s.shape);
  });
  model.setWeights(tensors);
  tensors.forEach((t) => t.dispose());
}

/** Clean accuracy of the model on a dataset, in batches, in inference mode. */
export async function evaluate(model: LayersModel, ds: Dataset, batch = 500): Promise<number> {
  return (await evaluateUnless(model, ds, batch, () => false)) as number;
}

/** {@link evaluate}, or null as soon as `stop()` says so (checked between batches). */
async function evaluateUnless(
  model: LayersModel,
  ds: Dataset,
  batch: number,
  stop: () => boolean,
): Promise<number | null> {
  const n = ds.labels.length;
  let correct = 0;
  for (let s = 0; s < n; s += batch) {
    await yieldToEvents();
    if (stop()) return null;
    const m = Math.min(batch, n - s);
    const x = unitImages(ds, s, m);
    const predicted = tf.tidy(() => {
      const logits = model.apply(tf.tensor4d(x, [m, ds.height, ds.width, ds.channels]), {
        training: false,
      }) as tf.Tensor;
      return tf.argMax(logits, -1);
    });
    const pred = await predicted.data();
    predicted.dispose();
    for (let k = 0; k < m; k++) if (pred[k] === ds.labels[s + k]) correct++;
  }
  return correct / n;
}

/** One data-parallel step: the workers compute the gradients, `apply` updates the weights. */
async function parallelStep(
  trainer: ParallelTrainer,
  batch: Batch,
  classes: number,
  apply: (grads: tf.NamedTensorMap) => void,
): Promise<{ loss: number; correct: number }> {
  const { loss, correct, grads } = await trainer.gradients({
    x: batch.x.subarray(
      0,
      batch.shape.reduce((a, b) => a * b, 1),
    ),
    shape: batch.shape,
    labels: batch.labels,
    targets: batch.mix ? mixTargets(batch.labels, classes, batch.mix) : undefined,
    classes,
  });
  apply(grads);
  tf.dispose(Object.values(grads));
  return { loss, correct };
}

/** The seed of epoch e's shuffling and augmentation: a function of the run's seed only. */
function epochRng(seed: number, epoch: number): Rng {
  return new Rng(seed * 1_000_003 + epoch + 1);
}

export function checkConfig(c: TrainConfig, train: Dataset): void {
  for (const [k, v] of [
    ['epochs', c.epochs],
    ['batch size', c.batchSize],
  ] as const)
    if (!Number.isInteger(v) || v < 1) fail(`${k} must be a positive integer (got ${v})`);
  if (!(c.lr > 0)) fail(`learning rate must be positive (got ${c.lr})`);
  if (train.labels.length < c.batchSize)
    fail(
      `batch size ${c.batchSize} is larger than the training set (${train.labels.length} images)`,
    );
}

/**
 * Trains `config.model` on `train` and measures accuracy on `test` after every epoch. With
 * `checkpointDir`, progress is saved after each epoch and on stop, and an existing checkpoint there
 * is resumed (its config must equal `config`).
 */
export async function train(
  config: TrainConfig,
  data: { train: Dataset; test: Dataset },
  checkpointDir: string | null,
  hooks: TrainHooks = {},
): Promise<TrainRun> {
  checkConfig(config, data.train);
  usePrecision(config.precision ?? 'fp32');
  const { train: base, test } = data;
  // A per-epoch countermeasure (rrc:S:epoch) makes each epoch's S×S images from the training set.
  const perEpoch = epochCrops(config.countermeasure);
  const geometry = perEpoch ? { ...base, height: perEpoch.size, width: perEpoch.size } : base;
  const classes = base.classNames.length;
  const model = buildModel(config.model, geometry, classes, {
    seed: config.seed,
    widen: config.widen,
  });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // tfjs names variables uniquely per process (conv1/kernel_3 for a second model); the optimiser
  // and checkpoints use the model's own names, so a checkpoint fits any fresh copy of the model.
  const own = new Map(model.trainableWeights.map((w, i) => [vars[i].name, w.originalName]));
  const sgd = new SGD(
    Object.fromEntries(model.trainableWeights.map((w, i) => [w.originalName, vars[i]])),
    { momentum: config.momentum, weightDecay: config.weightDecay },
  );
  const applyGrads = (grads: tf.NamedTensorMap, lr: number) =>
    sgd.step(Object.fromEntries(Object.entries(grads).map(([k, g]) => [own.get(k) ?? k, g])), lr);
  const onWasm = tf.getBackend() === 'wasm';
  const workers = config.workers ?? 1;
  if (workers > 1 && !onWasm)
    fail(
      `--workers ${workers}: worker threads are for the wasm backend; ` +
        `the ${tf.getBackend()} backend trains in one thread (use --workers 1)`,
    );
  // Micro-batches keep a step inside the wasm heap; other backends run the whole batch.
  const micro = onWasm ? MICRO_BATCH[config.model] : undefined;
  const split = micro !== undefined && micro < config.batchSize;
  if (config.adversarial && workers > 1)
    fail('adversarial training runs its attack in one thread: use 1 worker (--workers 1)');
  if (config.adversarial && split)
    fail(
      `adversarial training of ${config.model} at batch ${config.batchSize} does not fit the wasm ` +
        `heap (4 GB); use --batch-size ${micro} or smaller`,
    );
  const parallel =
    workers > 1 || split
      ? await createParallelTrainer(model, { workers, microBatch: micro })
      : null;
  const stepsPerEpoch = Math.floor(base.labels.length / config.batchSize); // drop_last, as in the paper's loader
  const lrAt = scheduleFor(config.schedule, {
    lr: config.lr,
    totalSteps: config.epochs * stepsPerEpoch,
    milestones: config.milestones.map((e) => e * stepsPerEpoch),
    gamma: config.gamma,
  });
  let history: EpochRecord[] = [];
  let startEpoch = 0;
  let startStep = 0;
  let running = { loss: 0, correct: 0, seen: 0, seconds: 0 };
  let resumedRng: Rng | null = null;
  // The data a checkpoint belongs to: training and test images and labels.
  const dataset = checkpointDir
    ? sha256(Buffer.from(datasetFingerprint(base) + datasetFingerprint(test)))
    : '';
  // An existing folder must be a readable checkpoint of this run: a damaged one is refused (and
  // so never overwritten), not taken for "none".
  if (checkpointDir && (await exists(checkpointDir))) {
    const ck = await loadCheckpoint<TrainConfig, EpochRecord[]>(checkpointDir);
    const diff = configDifferences(ck.meta.config, config);
    if (diff.length > 0)
      fail(
        `${checkpointDir}: cannot resume, the checkpoint was made with other settings: ` +
          `${diff.join('; ')} (use the same settings, or --force to start over)`,
      );
    if (ck.meta.dataset !== undefined && ck.meta.dataset !== dataset)
      fail(
        `${checkpointDir}: cannot resume, the checkpoint belongs to other training or test ` +
          'data (fingerprint differs)',
      );
    if (ck.meta.epoch > config.epochs || ck.meta.step > stepsPerEpoch)
      fail(
        `${checkpointDir}/checkpoint.json: epoch ${ck.meta.epoch} step ${ck.meta.step} lies ` +
          `outside this run (${config.epochs} epochs of ${stepsPerEpoch} steps); refusing it`,
      );
    setWeights(model, ck.weights, checkpointDir);
    try {
      sgd.loadState(ck.optimizer);
    } catch (e) {
      fail(`${checkpointDir}/weights.bin: ${(e as Error).message}; refusing it`);
    }
    history = ck.meta.history;
    startEpoch = ck.meta.epoch;
    startStep = ck.meta.step;
    running = ck.meta.running;
    resumedRng = Rng.fromState(ck.meta.rng);
  }
  const save = async (epoch: number, step: number, rng: Rng) => {
    if (!checkpointDir) return;
    await saveCheckpoint(
      checkpointDir,
      { config, epoch, step, rng: rng.state(), running, history, dataset },
      await weightsOf(model),
      await sgd.state(),
    );
  };
  const size = geometry.height * geometry.width * geometry.channels;
  // Two batch buffers: with workers, the next batch is augmented here while they compute.
  const xBufs = [0, 1].map(() => new Float32Array(config.batchSize * size));
  for (let epoch = startEpoch; epoch < config.epochs; epoch++) {
    const seedRng = epochRng(config.seed, epoch);
    const order = seedRng.permutation(base.labels.length);
    const first = epoch === startEpoch ? startStep : 0;
    // Mid-epoch, the saved generator carries on; at an epoch's start it is the epoch's own, which
    // has just drawn the order (a checkpoint saved at the end of an epoch holds its state from
    // before that draw: taking it would deal the augmentation the order's random numbers).
    const rng = first > 0 && resumedRng ? resumedRng : seedRng;
    if (first === 0) running = { loss: 0, correct: 0, seen: 0, seconds: 0 };
    /** Stopped (a signal) before step `step` of this epoch: saved so that a resume starts there. */
    const stopBefore = async (step: number, state: Rng): Promise<TrainRun> => {
      await save(epoch, step, state);
      await parallel?.close();
      return { config, history, finished: false };
    };
    const ds = perEpoch ? await perEpoch.images(base, config.seed, epoch, hooks.shouldStop) : base;
    if (!ds) return stopBefore(first, rng);
    const indices = (step: number) =>
      order.subarray(step * config.batchSize, (step + 1) * config.batchSize);
    /** The next batch, made ahead, and the generator's state before it (for a checkpoint). */
    const ahead: { next: { batch: Batch; rngBefore: RngState } | null } = { next: null };
    for (let step = first; step < stepsPerEpoch; step++) {
      await yieldToEvents();
      if (hooks.shouldStop?.())
        return stopBefore(step, ahead.next ? Rng.fromState(ahead.next.rngBefore) : rng);
      const t0 = performance.now();
      const idx = indices(step);
      const batch =
        ahead.next?.batch ?? makeBatch(ds, idx, config.strategy, rng, { out: xBufs[step % 2] });
      ahead.next = null;
      const lr = lrAt(epoch * stepsPerEpoch + step);
      const { loss, correct } = parallel
        ? await (async () => {
            // The workers get copies of the batch at once; augment the next one meanwhile.
            const pending = parallelStep(parallel, batch, classes, (g) => applyGrads(g, lr));
            if (step + 1 < stepsPerEpoch) {
              const rngBefore = rng.state();
              const opts = { out: xBufs[(step + 1) % 2] };
              const next = makeBatch(ds, indices(step + 1), config.strategy, rng, opts);
              ahead.next = { batch: next, rngBefore };
            }
            return pending;
          })()
        : await (async () => {
            const { value, predicted } = tf.tidy(() => {
              const shape = batch.shape;
              let x: tf.Tensor4D = tf.tensor4d(
                batch.x.subarray(
                  0,
                  shape.reduce((a, b) => a * b, 1),
                ),
                shape,
              );
              const targets = tf.tensor2d(mixTargets(batch.labels, classes, batch.mix), [
                shape[0],
                classes,
              ]);
              if (config.adversarial) {
                const a = attackAt(config.adversarial, epoch * stepsPerEpoch + step, stepsPerEpoch);
                // An AttackConfig is pgd's options (ε, step, steps, noise, project) plus warm-up.
                x = pgd(
                  (xa) => crossEntropy(model.apply(xa, { training: false }) as tf.Tensor, targets),
                  x,
                  { ...a, rng },
                );
              }
              let kept: tf.Tensor | null = null;
              const { value, grads } = tf.variableGrads(() => {
                const logits = model.apply(x, { training: true }) as tf.Tensor;
                kept = tf.keep(tf.argMax(logits, -1));
                return crossEntropy(logits, targets);
              }, vars);
              applyGrads(grads, lr);
              return { value, predicted: kept as unknown as tf.Tensor };
            });
            // Read after the step, asynchronously: GPU backends cannot read synchronously.
            const [lossValue, pred] = await Promise.all([value.data(), predicted.data()]);
            tf.dispose([value, predicted]);
            let c = 0;
            for (let i = 0; i < pred.length; i++) if (pred[i] === batch.labels[i]) c++;
            return { loss: lossValue[0], correct: c };
          })();
      if (!Number.isFinite(loss)) {
        await parallel?.close();
        const last = history.length
          ? `the last good checkpoint is ${checkpointDir ?? '(none: no checkpoint folder)'} (epoch ${history.length})`
          : 'no epoch finished';
        fail(`epoch ${epoch + 1} step ${step + 1}: loss is ${loss}; stopping (${last})`);
      }
      running.loss += loss * idx.length;
      running.correct += correct;
      running.seen += idx.length;
      running.seconds += (performance.now() - t0) / 1000;
      hooks.onStep?.((step + 1) * config.batchSize, stepsPerEpoch * config.batchSize, epoch);
    }
    const stopped = () => !!hooks.shouldStop?.();
    const testAccuracy = await evaluateUnless(model, test, 500, stopped);
    // Adversarial training, the last epoch: robust accuracy (PGD-20) as evidence that it worked.
    const robust =
      testAccuracy === null
        ? null
        : config.adversarial && epoch === config.epochs - 1
          ? await robustRecord(model, test, config.seed, stopped)
          : {};
    if (testAccuracy === null || robust === null) {
      // Stopped while measuring: every step is done; a resume measures again.
      await save(epoch, stepsPerEpoch, rng);
      await parallel?.close();
      return { config, history, finished: false };
    }
    const record: EpochRecord = {
      epoch: epoch + 1,
      lr: lrAt((epoch + 1) * stepsPerEpoch - 1),
      trainLoss: running.loss / running.seen,
      trainAccuracy: running.correct / running.seen,
      testAccuracy,
      seconds: running.seconds,
      imagesPerSecond: running.seen / running.seconds,
      ...robust,
    };
    history.push(record);
    await hooks.onEpoch?.(record);
    await save(epoch + 1, 0, epochRng(config.seed, epoch + 1));
  }
  await parallel?.close();
  sgd.dispose();
  model.dispose();
  return { config, history, finished: true };
}
