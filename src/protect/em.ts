/**
 * Error-minimizing noise (Huang et al.): generated on a surrogate (../noise/em.ts), with a
 * checkpoint folder so a long generation survives a stop. Loads the training engine (tfjs): the
 * protect job imports this module only for --method em and cifar10s.
 */
import { type Dataset, imageSize } from '../data/dataset.js';
import { datasetFingerprint } from '../data/files.js';
import { fail } from '../errors.js';
import type { NoiseRecord } from '../manifest.js';
import {
  type BackendName,
  initEngine,
  type PrecisionName,
  resolvePrecision,
  usePrecision,
} from '../nn/engine.js';
import { loadEmCheckpoint, saveEmCheckpoint } from '../noise/checkpoint.js';
import { EM_DEFAULTS, type EmConfig, type EmPhase, type EmRound, generateEm } from '../noise/em.js';
import { NOISE_FILE } from '../noise/npy.js';
import { checkOutput, removeOutput } from '../output.js';
import type { MethodInput, Protected } from './method.js';
import {
  inMemory,
  type Noise,
  noiseFromFile,
  noiseShape,
  noisyResult,
  type NoiseOptions,
} from './noise.js';

/** The file that proves a folder is an EM checkpoint onepixel wrote. */
export const EM_CHECKPOINT_MARKER = 'em.json';

export interface EmOptions extends NoiseOptions {
  /** EM settings other than epsilon and seed (the defaults: EM_DEFAULTS). */
  em?: Partial<Omit<EmConfig, 'epsilon' | 'seed'>>;
  backend?: BackendName;
  /** The surrogate's precision on the native backend (default fp32; see src/nn/names.ts). */
  precision?: PrecisionName;
  workers?: number;
  /** EM checkpoint folder (default `<out>.em-checkpoint`), and whether to resume it. */
  checkpoint?: string;
  resume?: boolean;
  force?: boolean;
  /** Seconds between mid-pass checkpoints (default 300). */
  saveEverySeconds?: number;
  onEm?: (phase: EmPhase, done: number, total: number, round: number) => void;
  onRound?: (r: EmRound) => void;
  shouldStop?: () => boolean;
}

/** The checkpoint folder of a run writing `out`. */
export function emCheckpointDir(out: string, o: Pick<EmOptions, 'checkpoint'>): string {
  return o.checkpoint ?? `${out.replace(/\/+$/, '')}.em-checkpoint`;
}

/** Checks the checkpoint folder before any work (the job calls it with the output check). */
export async function checkEmCheckpoint(
  dir: string,
  o: EmOptions,
  inputs: Array<string | undefined>,
) {
  const rules = {
    flag: '--checkpoint',
    force: o.force ?? false,
    resume: o.resume,
    marker: EM_CHECKPOINT_MARKER,
    inputs,
  };
  const there = await checkOutput(dir, rules);
  if (o.resume && !there) fail(`${dir}: no EM checkpoint to resume (start without --resume)`);
  return rules;
}

async function generate(
  train: Dataset,
  o: EmOptions,
  dir: string,
  inputs: Array<string | undefined>,
): Promise<Noise> {
  const rules = await checkEmCheckpoint(dir, o, inputs);
  const backend = await initEngine(o.backend ?? 'auto');
  const precision = resolvePrecision(o.precision ?? 'fp32', backend);
  // In the config only when bf16: a resumed fp32 checkpoint, and the manifest, read as before.
  const config: EmConfig = {
    ...EM_DEFAULTS,
    ...o.em,
    epsilon: o.epsilon,
    seed: o.seed,
    ...(precision === 'bf16' ? { precision } : {}),
  };
  usePrecision(precision);
  // A resumed EM must belong to the same images and labels.
  const data = datasetFingerprint(train);
  let resume = null;
  if (o.resume) {
    const values =
      (config.mode === 'classwise' ? train.classNames.length : train.labels.length) *
      imageSize(train);
    resume = await loadEmCheckpoint(dir, config, data, values);
    if (resume === null) fail(`${dir}: no EM checkpoint to resume (start without --resume)`);
  } else await removeOutput(dir, rules);
  const workers = o.workers ?? 1;
  const result = await generateEm(
    train,
    config,
    {
      onProgress: o.onEm,
      onRound: o.onRound,
      shouldStop: o.shouldStop,
      save: (snap) => saveEmCheckpoint(dir, snap, data),
      saveEverySeconds: o.saveEverySeconds ?? 300,
      workers,
      // Noise-pass worker threads run wasm engines whatever runs here (the native addon and a GPU
      // device belong to this thread).
      backend: 'wasm',
    },
    resume,
  );
  if (!result.finished)
    fail(`EM generation stopped; checkpoint saved in ${dir} (continue with --resume)`);
  const last = result.state.history[result.state.history.length - 1];
  const em: NoiseRecord['em'] = {
    config,
    rounds: result.state.round,
    finalAccuracy: last?.accuracy ?? 0,
    stoppedBy: result.state.stopped ?? 'max-rounds',
    seconds: result.state.seconds,
    backend,
    workers,
    history: result.state.history,
  };
  const record: NoiseRecord = {
    file: NOISE_FILE,
    shape: noiseShape(train),
    epsilon: o.epsilon,
    generator: 'em',
    seed: o.seed,
    em,
  };
  if (result.classNoise) record.classNoiseFile = 'class-noise.npy';
  return { noise: result.noise, classNoise: result.classNoise, record };
}

/** The EM noise of the training split (or the noise of --noise), in memory. */
export async function emNoise(
  input: MethodInput,
  o: EmOptions,
  checkpointDir: string,
  inputs: Array<string | undefined>,
): Promise<{ train: Dataset; noise: Noise }> {
  const train = await inMemory(input.train);
  const noise = o.noiseFile
    ? await noiseFromFile(train, o, o.noiseFile)
    : await generate(train, o, checkpointDir, inputs);
  return { train, noise };
}

export async function em(
  input: MethodInput,
  o: EmOptions,
  checkpointDir: string,
  inputs: Array<string | undefined>,
): Promise<Protected> {
  const { train, noise } = await emNoise(input, o, checkpointDir, inputs);
  return noisyResult(train, noise, o.epsilon, null);
}
