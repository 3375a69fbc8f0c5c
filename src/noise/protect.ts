/**
 * The protect job for the noise methods: `em` (error-minimizing noise), `cifar10s` (EM noise, then
 * the OPS pixel searched on the clean images, ops-spec §3) and `random-noise` (uniform ±ε). Writes
 * the protected training split (test split unchanged) in any writer format, `noise.npy` (float32
 * N×H×W×C, [0, 1] units: δ with clean/255 + δ the perturbed image) and manifest.json, atomically.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fail } from '../errors.js';
import type { Dataset, ImageStream } from '../data/dataset.js';
import { imageSize, isDataset, streamOf } from '../data/dataset.js';
import { defaultFormat, openDataset, writerFor } from '../data/formats.js';
import type { SplitToWrite } from '../data/write.js';
import {
  MANIFEST,
  type Manifest,
  type Method,
  type NoiseRecord,
  manifestJson,
  parseManifest,
} from '../manifest.js';
import { type BackendName, initEngine } from '../nn/engine.js';
import { checkOutput, exists, writeAtomically } from '../output.js';
import type { ProtectOptions } from '../protect.js';
import { applyToImage } from '../shortcut/apply.js';
import { datasetStatsParallel } from '../shortcut/parallel-stats.js';
import { type SearchResult, selectPixels } from '../shortcut/search.js';
import { datasetFingerprint } from '../data/files.js';
import { materialize } from '../data/materialize.js';
import { checkEpsilon, checkNoise, DEFAULT_EPSILON, perturbBytes } from './bounds.js';
import { EM_DEFAULTS, type EmConfig, type EmPhase, type EmRound, generateEm } from './em.js';
import { loadEmCheckpoint, saveEmCheckpoint } from './checkpoint.js';
import { NOISE_FILE, readNoiseNpy, writeNoiseNpy } from './npy.js';
import { randomNoise } from './random.js';

export interface NoiseProtectOptions extends ProtectOptions {
  method: Exclude<Method, 'ops'>;
  /** L∞ budget as a fraction of the pixel range (default 8/255). */
  epsilon?: number;
  /** Seeds random noise, and EM's initial noise, surrogate and batch order. Default 0. */
  seed?: number;
  /** Use this noise (float32 .npy, N×H×W×C) instead of generating it. */
  noiseFile?: string;
  /** EM settings other than epsilon and seed (the defaults: EM_DEFAULTS). */
  em?: Partial<Omit<EmConfig, 'epsilon' | 'seed'>>;
  backend?: BackendName;
  workers?: number;
  /** EM checkpoint folder (default `<out>.em-checkpoint`), and whether to resume it. */
  checkpoint?: string;
  resume?: boolean;
  /** Seconds between mid-pass checkpoints (default 300). */
  saveEverySeconds?: number;
  onEm?: (phase: EmPhase, done: number, total: number, round: number) => void;
  onRound?: (r: EmRound) => void;
  shouldStop?: () => boolean;
}

async function emNoise(o: NoiseProtectOptions, train: Dataset, epsilon: number, seed: number) {
  const config: EmConfig = { ...EM_DEFAULTS, ...o.em, epsilon, seed };
  const backend = await initEngine(o.backend ?? 'auto');
  const dir = o.checkpoint ?? `${o.out.replace(/\/+$/, '')}.em-checkpoint`;
  // A resumed EM must belong to the same images and labels.
  const data = datasetFingerprint(train);
  let resume = null;
  if (o.resume) {
    const values =
      (config.mode === 'classwise' ? train.classNames.length : train.labels.length) *
      imageSize(train);
    resume = await loadEmCheckpoint(dir, config, data, values);
    if (resume === null) fail(`${dir}: no EM checkpoint to resume (start without --resume)`);
  } else if (o.force) await rm(dir, { recursive: true, force: true });
  else if (await exists(dir))
    fail(`${dir}: an EM checkpoint exists; pass --resume to continue it or --force to start over`);
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
  const record: NoiseRecord['em'] = {
    config,
    rounds: result.state.round,
    finalAccuracy: last?.accuracy ?? 0,
    stoppedBy: result.state.stopped ?? 'max-rounds',
    seconds: result.state.seconds,
    backend,
    workers,
    history: result.state.history,
  };
  return { noise: result.noise, classNoise: result.classNoise, record };
}

/** Protects a dataset on disk with a noise method; returns the manifest. */
export async function protectWithNoise(o: NoiseProtectOptions): Promise<Manifest> {
  const force = o.force ?? false;
  const epsilon = o.epsilon ?? DEFAULT_EPSILON;
  checkEpsilon(epsilon, '--epsilon');
  const seed = o.seed ?? 0;
  await checkOutput(o.out, force);
  const dataDir = resolve(o.dataDir);
  const splits = await openDataset(o.dataset, dataDir, o);
  const format = o.format ?? defaultFormat(o.dataset);
  const writer = writerFor(format, o.dataset);
  const train = isDataset(splits.train) ? splits.train : await materialize(splits.train);
  const n = train.labels.length;
  const shape = [n, train.height, train.width, train.channels];
  let noise: Float32Array;
  let classNoise: Float32Array | null = null;
  const record: NoiseRecord = { file: NOISE_FILE, shape, epsilon, generator: 'file' };
  if (o.noiseFile) {
    noise = await readNoiseNpy(o.noiseFile, shape);
    checkNoise(train.images, noise, epsilon, o.noiseFile, imageSize(train));
    record.from = resolve(o.noiseFile);
  } else if (o.method === 'random-noise') {
    noise = randomNoise(train.images, epsilon, seed);
    Object.assign(record, { generator: 'random', seed });
  } else {
    const em = await emNoise(o, train, epsilon, seed);
    ({ noise, classNoise } = em);
    Object.assign(record, { generator: 'em', seed, em: em.record });
    if (classNoise) record.classNoiseFile = 'class-noise.npy';
  }
  let pixels: SearchResult | null = null;
  if (o.method === 'cifar10s') {
    pixels = selectPixels(await datasetStatsParallel(train, false), train.classNames, {
      objective: 'official',
      pixels: 1,
    });
  }
  const toWrite: SplitToWrite[] = [
    { name: 'train', stream: noisyStream(train, noise, epsilon, pixels) },
  ];
  if (splits.test) {
    const t = splits.test;
    toWrite.push({ name: 'test', stream: isDataset(t) ? streamOf(t, 'test image') : t });
  }
  const manifest = manifestJson({
    method: o.method,
    objective: pixels ? 'official' : null,
    pixelsPerClass: pixels ? 1 : 0,
    height: train.height,
    width: train.width,
    channels: train.channels,
    classes: pixels
      ? pixels.classes
      : train.classNames.map((name, label) => ({
          label,
          name,
          count: train.labels.filter((l) => l === label).length,
          pixels: [],
        })),
    source: {
      dataset: o.dataset,
      dataDir,
      files: splits.files.map((f) => ({ ...f, path: relative(dataDir, f.path) || '.' })),
    },
    output: { format, train: n, test: splits.test ? toWrite[1].stream.count : null },
    noise: record,
  });
  const total = toWrite.reduce((s, w) => s + w.stream.count, 0);
  let written = 0;
  await writeAtomically(o.out, force, async (dir) => {
    await writer(dir, toWrite, () => o.onProgress?.('write', ++written, total));
    await writeNoiseNpy(join(dir, NOISE_FILE), noise, shape);
    if (classNoise)
      await writeNoiseNpy(join(dir, 'class-noise.npy'), classNoise, [
        train.classNames.length,
        ...shape.slice(1),
      ]);
    await writeFile(join(dir, MANIFEST), manifest);
  });
  return parseManifest(manifest, join(o.out, MANIFEST));
}

/** The training split with the noise (and, for cifar10s, the OPS pixel over it) as bytes. */
export function noisyStream(
  train: Dataset,
  noise: Float32Array,
  epsilon: number,
  pixels: SearchResult | null,
): ImageStream {
  const base = streamOf(train, 'train image');
  const size = imageSize(train);
  return {
    ...base,
    async *records() {
      const image = new Uint8Array(size);
      let i = 0;
      for await (const rec of base.records()) {
        perturbBytes(rec.image, noise.subarray(i * size, (i + 1) * size), epsilon, image);
        if (pixels) applyToImage(image, train.width, train.channels, pixels.classes[rec.label]);
        i++;
        yield { ...rec, image };
      }
    },
  };
}
