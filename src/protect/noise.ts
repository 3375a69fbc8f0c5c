/**
 * What the noise methods (em, cifar10s, random-noise) share: the training split in memory, the
 * noise from a file (`--noise`) or a generator, the perturbed stream, and `noise.npy` (float32
 * N×H×W×C, [0, 1] units: δ with clean/255 + δ the perturbed image) beside the data.
 */
import { join, resolve } from 'node:path';
import type { Dataset, ImageStream } from '../data/dataset.js';
import { imageSize, isDataset, streamOf } from '../data/dataset.js';
import type { NoiseRecord } from '../manifest.js';
import { checkNoise, perturbBytes } from '../noise/bounds.js';
import { NOISE_FILE, readNoiseNpy, writeNoiseNpy } from '../noise/npy.js';
import { yieldToSignals } from '../output.js';
import { applyToImage } from '../shortcut/apply.js';
import type { Objective, SearchResult } from '../shortcut/search.js';
import { materialize } from '../data/materialize.js';
import type { MethodInput, Protected } from './method.js';

export interface NoiseOptions {
  /** L∞ budget as a fraction of the pixel range (default 8/255). */
  epsilon: number;
  /** Seeds random noise, and EM's initial noise, surrogate and batch order. */
  seed: number;
  /** Use this noise (float32 .npy, N×H×W×C) instead of generating it. */
  noiseFile?: string;
}

/** Generated (or read) noise: per image, and for class-wise EM the K class noises. */
export interface Noise {
  noise: Float32Array;
  classNoise: Float32Array | null;
  record: NoiseRecord;
}

export async function inMemory(train: Dataset | ImageStream): Promise<Dataset> {
  return isDataset(train) ? train : await materialize(train);
}

export function noiseShape(train: Dataset): number[] {
  return [train.labels.length, train.height, train.width, train.channels];
}

/** The noise of `--noise <file>`, checked against the images and the budget. */
export async function noiseFromFile(train: Dataset, o: NoiseOptions, file: string): Promise<Noise> {
  const shape = noiseShape(train);
  const noise = await readNoiseNpy(file, shape);
  checkNoise(train.images, noise, o.epsilon, file, imageSize(train));
  const record: NoiseRecord = { file: NOISE_FILE, shape, epsilon: o.epsilon, generator: 'file' };
  record.from = resolve(file);
  return { noise, classNoise: null, record };
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
        // A signal must reach its handler even when the writer never waits on I/O.
        if (i % 1024 === 0) await yieldToSignals();
        yield { ...rec, image };
      }
    },
  };
}

/** The protected split of a noise method; `ops` (cifar10s) writes the OPS pixel over it. */
export function noisyResult(
  train: Dataset,
  n: Noise,
  epsilon: number,
  ops: { result: SearchResult; objective: Objective; pixels: number } | null,
): Protected {
  const shape = noiseShape(train);
  return {
    stream: noisyStream(train, n.noise, epsilon, ops?.result ?? null),
    fields: {
      objective: ops ? ops.objective : null,
      pixelsPerClass: ops ? ops.pixels : 0,
      classes: ops
        ? ops.result.classes
        : train.classNames.map((name, label) => ({
            label,
            name,
            count: train.labels.filter((l) => l === label).length,
            pixels: [],
          })),
      noise: n.record,
    },
    extraFiles: async (dir) => {
      await writeNoiseNpy(join(dir, NOISE_FILE), n.noise, shape);
      if (n.classNoise)
        await writeNoiseNpy(join(dir, 'class-noise.npy'), n.classNoise, [
          train.classNames.length,
          ...shape.slice(1),
        ]);
    },
  };
}

export type { MethodInput };
