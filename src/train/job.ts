/**
 * THE train job, used by `onepixel train` (one run) and by the audit (one run per cell and seed):
 * a config in (model, strategy, countermeasure, seed, epochs, schedule… over a preset), the
 * training data, the files to write (results JSON, per-epoch CSV, checkpoint folder); the results
 * out. The countermeasure is applied to the training images here, once per job unless the caller
 * passes data it already transformed.
 */
import { fail } from '../errors.js';
import {
  nativeThreads,
  defaultWorkers,
  resolvePrecision,
  type BackendName,
  type PrecisionName,
} from '../nn/engine.js';
import type { ModelName } from '../nn/models/index.js';
import type { ScheduleName } from '../nn/schedule.js';
import { STRATEGIES, type Strategy } from './augment.js';
import {
  applyCountermeasure,
  countermeasureName,
  evalTransform,
  parseCountermeasure,
} from './countermeasures.js';
import type { TrainingData } from './data.js';
import {
  type AttackConfig,
  type EpochRecord,
  type TrainConfig,
  type TrainHooks,
  train,
} from './loop.js';
import { trainFast94 } from './fast94.js';
import {
  PAPER_ATTACK,
  PRESET_ATTACK_WARMUP,
  PRESET_CONFIG,
  presetAttack,
  type PresetName,
} from './presets.js';
import { csvLog, summarize, type TrainResults, writeFileAtomic } from './results.js';

/** Training strategies: an augmentation, optionally with adversarial training ('at', 'at+cutout'…). */
export const TRAIN_STRATEGIES = [
  ...STRATEGIES,
  'at',
  ...STRATEGIES.filter((s) => s !== 'none' && s !== 'standard').map((s) => `at+${s}`),
];

export function parseStrategy(name: string): { augment: Strategy; adversarial: boolean } {
  if (!TRAIN_STRATEGIES.includes(name))
    fail(`unknown strategy '${name}' (--strategy); valid: ${TRAIN_STRATEGIES.join(', ')}`);
  if (name === 'at') return { augment: 'standard', adversarial: true };
  if (name.startsWith('at+')) return { augment: name.slice(3) as Strategy, adversarial: true };
  return { augment: name as Strategy, adversarial: false };
}

/** What a job is asked for; unset fields come from the preset, then from the quick protocol. */
export interface JobSpec {
  model?: ModelName;
  strategy?: string;
  preset?: PresetName;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  schedule?: ScheduleName;
  milestones?: number[];
  seed: number;
  /** Adversarial training: L∞ radius and PGD step (fractions of the pixel range) and steps; default the paper's. */
  epsilon?: number;
  attackStep?: number;
  attackSteps?: number;
  /** Adversarial training: epochs over which ε grows from 0 (0: none); default the preset's. */
  attackWarmup?: number;
  widen?: number;
  workers?: number;
  countermeasure?: string;
  /** fp32 (the default), bf16, or auto (bf16 where the native backend runs it natively). */
  precision?: PrecisionName;
}

/**
 * The run's config: the spec over the preset over the defaults (the quick protocol). `engine` is
 * the backend initEngine started (worker threads are a wasm feature).
 */
export function jobConfig(f: JobSpec, engine: string): TrainConfig {
  const preset = f.preset ? PRESET_CONFIG[f.preset] : {};
  const base = { ...PRESET_CONFIG.quick, gamma: 0.1, ...preset };
  const strategy = parseStrategy(f.strategy ?? (base.strategy as string) ?? 'standard');
  const countermeasure = f.countermeasure ? parseCountermeasure(f.countermeasure) : null;
  if (countermeasure?.kind === 'rrc' && countermeasure.epoch && base.recipe === 'fast94')
    fail(
      `${countermeasureName(countermeasure)}: per-epoch crops run in the quick and paper presets' ` +
        `training loop; the fast94 recipe has its own (flip and translate)`,
    );
  return {
    model: f.model ?? base.model ?? 'lenet5',
    strategy: strategy.augment,
    adversarial: strategy.adversarial ? attackConfig(f) : null,
    epochs: f.epochs ?? base.epochs ?? 15,
    batchSize: f.batchSize ?? base.batchSize ?? 128,
    lr: f.lr ?? base.lr ?? 0.05,
    momentum: f.momentum ?? base.momentum ?? 0.9,
    weightDecay: f.weightDecay ?? base.weightDecay ?? 5e-4,
    schedule: f.schedule ?? base.schedule ?? 'onecycle',
    milestones: f.milestones ?? base.milestones ?? [],
    gamma: base.gamma ?? 0.1,
    seed: f.seed,
    ...(f.widen ? { widen: f.widen } : {}),
    ...(countermeasure && countermeasure.kind !== 'none'
      ? { countermeasure: countermeasureName(countermeasure) }
      : {}),
    // wasm: both cores by default; native and webgpu train in one thread; adversarial: one thread.
    workers: f.workers ?? defaultWorkers(engine as BackendName, strategy.adversarial),
    // Only when not fp32: an fp32 config, and so an fp32 audit cell's identity, stays as it was.
    ...(resolvePrecision(f.precision ?? 'fp32', engine) === 'bf16'
      ? { precision: 'bf16' as const }
      : {}),
    ...(base.recipe ? { recipe: base.recipe } : {}),
  };
}

const warmup = (epochs: number) => (epochs > 0 ? { warmupEpochs: epochs } : {});

/** Adversarial training's attack: the flags over the preset's (presetAttack). */
function attackConfig(f: JobSpec): AttackConfig {
  const preset = f.preset ?? 'quick';
  const epsilon = f.epsilon ?? PAPER_ATTACK.epsilon;
  const { step, steps, noise, project, whitenFloor } = presetAttack(preset, epsilon);
  return {
    epsilon,
    step: f.attackStep ?? step,
    steps: f.attackSteps ?? steps,
    ...warmup(f.attackWarmup ?? PRESET_ATTACK_WARMUP[preset]),
    ...(noise !== undefined ? { noise } : {}),
    ...(project !== undefined ? { project } : {}),
    ...(whitenFloor !== undefined ? { whitenFloor } : {}),
  };
}

/**
 * The training data a config trains on: its countermeasure applied to the training images (and a
 * resizing one's evaluation transform to the test images); null
 * when `shouldStop` said yes on the way (a signal).
 */
export async function jobData(
  config: TrainConfig,
  data: TrainingData,
  onProgress?: (done: number, total: number) => void,
  shouldStop?: () => boolean,
): Promise<TrainingData | null> {
  if (!config.countermeasure) return data;
  const total = data.train.labels.length;
  const c = parseCountermeasure(config.countermeasure);
  const train = await applyCountermeasure(
    data.train,
    c,
    (done) => onProgress?.(done, total),
    shouldStop,
  );
  if (!train) return null;
  // A resizing countermeasure is the trainer's pipeline: the test split goes through its
  // evaluation transform so that the model sees test images of the size it trained on.
  const e = evalTransform(c);
  const test = e ? await applyCountermeasure(data.test, e, undefined, shouldStop) : data.test;
  return test && { ...data, train, test };
}

export interface JobFiles {
  results: string;
  log: string;
  checkpoint: string;
}

/** What the results JSON records besides the config and the history. */
export interface JobMeta {
  backend: string;
  /** The data folder, as given. */
  data: string;
  /** The strategy as named (e.g. 'at', 'standard+grayscale'). */
  strategy: string;
  preset: string | null;
}

/**
 * Trains `config` on `data` (already through its countermeasure: see jobData), writing the CSV
 * after every epoch and the results JSON at the end or when stopped; resumes `files.checkpoint`
 * if it holds one.
 */
export async function runTrainJob(
  config: TrainConfig,
  data: TrainingData,
  files: JobFiles,
  meta: JobMeta,
  hooks: TrainHooks = {},
): Promise<TrainResults> {
  const history: EpochRecord[] = [];
  const run = await (config.recipe === 'fast94' ? trainFast94 : train)(
    config,
    data,
    files.checkpoint,
    {
      ...hooks,
      onEpoch: async (r) => {
        history.push(r);
        await writeFileAtomic(files.log, csvLog(history));
        await hooks.onEpoch?.(r);
      },
    },
  );
  await writeFileAtomic(files.log, csvLog(run.history));
  const results = summarize(config, run.history, {
    ...meta,
    finished: run.finished,
    threads: nativeThreads(),
  });
  await writeFileAtomic(files.results, JSON.stringify(results, null, 2) + '\n');
  return results;
}
