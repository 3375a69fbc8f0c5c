/**
 * THE protect job: download if asked, check the output, open the dataset, let the method turn the
 * training split into a protected stream, and write it (test split unchanged) with manifest.json
 * (and the method's extra files), atomically. The EM methods load the training engine, so their
 * modules are imported only when they run.
 */
import { writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { isDataset, type Shape, streamOf } from '../data/dataset.js';
import { type DownloadSpec, DOWNLOADS, downloadDataset } from '../data/download.js';
import {
  type DatasetKind,
  type OpenOptions,
  type OutputFormat,
  defaultFormat,
  openDataset,
  writerFor,
} from '../data/formats.js';
import type { SplitToWrite } from '../data/write.js';
import { fail } from '../errors.js';
import { MANIFEST, type Manifest, type Method, manifestJson, parseManifest } from '../manifest.js';
import { checkEpsilon, DEFAULT_EPSILON } from '../noise/bounds.js';
import { checkOutput, holdOutput, type OutputRules, writeAtomically } from '../output.js';
import type { EmOptions } from './em.js';
import type { MethodInput, Phase, Protected } from './method.js';
import { checkPixels, ops, type OpsOptions } from './ops.js';
import { copiesRecords, opsOnRecords, type RecordsJob } from './ops-records.js';
import { randomNoiseMethod } from './random-noise.js';
import type { PipelineOptions } from './ops-pipeline.js';

export type { Phase } from './method.js';

export interface ProtectOptions
  extends OpenOptions, OpsOptions, Partial<EmOptions>, Partial<PipelineOptions> {
  /** ops (default), em, cifar10s or random-noise. */
  method?: Method;
  dataset: DatasetKind;
  dataDir: string;
  out: string;
  format?: OutputFormat;
  /** Replace --out (and the EM checkpoint) when onepixel wrote it. */
  force?: boolean;
  /** Fetch CIFAR-10/100 from the official location into dataDir when it is not there. */
  download?: boolean;
  /**
   * OPS with CIFAR binary in and out works on the record bytes (default); false takes the general
   * path (decode, stream, encode), which gives the same bytes: for tests and benchmarks.
   */
  copyRecords?: boolean;
  /** Progress: phase, items done, items in all (null when unknown). */
  onProgress?: (phase: Phase, done: number, total: number | null) => void;
}

/** The options of the noise methods (kept for the library's `protectWithNoise`). */
export type NoiseProtectOptions = ProtectOptions & { method: Exclude<Method, 'ops'> };

async function resolveDataDir(o: ProtectOptions): Promise<string> {
  if (!o.download) return o.dataDir;
  if (o.dataset !== 'cifar10' && o.dataset !== 'cifar100')
    fail(`--download fetches cifar10 and cifar100 only, not '${o.dataset}'`);
  const spec: DownloadSpec = DOWNLOADS[o.dataset];
  return downloadDataset(spec, o.dataDir, {
    onProgress: (received, total) => o.onProgress?.('download', received, total),
  });
}

const usesEm = (m: Method) => m === 'em' || m === 'cifar10s';

async function runMethod(
  method: Method,
  input: MethodInput,
  o: ProtectOptions,
  epsilon: number,
  inputs: Array<string | undefined>,
): Promise<Protected> {
  const noise = { ...o, epsilon, seed: o.seed ?? 0 };
  if (method === 'ops' && o.pipeline)
    return (await import('./ops-pipeline.js')).opsPipeline(input, { ...o, pipeline: o.pipeline });
  if (method === 'ops') return ops(input, o);
  if (method === 'random-noise') return randomNoiseMethod(input, noise);
  const em = await import('./em.js');
  const dir = em.emCheckpointDir(o.out, o);
  if (method === 'em') return em.em(input, noise, dir, inputs);
  return (await import('./cifar10s.js')).cifar10s(input, noise, dir, inputs);
}

/** Protects a dataset on disk; returns the manifest written next to the data. */
export async function protect(o: ProtectOptions): Promise<Manifest> {
  const method = o.method ?? 'ops';
  const epsilon = o.epsilon ?? DEFAULT_EPSILON;
  if (method !== 'ops') checkEpsilon(epsilon, '--epsilon');
  if (o.pipeline && method !== 'ops') fail(`--pipeline: for --method ops only (got ${method})`);
  if (o.pipeline) (await import('./ops-pipeline.js')).parsePipeline(o.pipeline);
  const inputs = [o.dataDir, o.noiseFile];
  const rules = { flag: '--out', force: o.force ?? false, marker: MANIFEST, inputs };
  await checkOutput(o.out, rules);
  // One writer per output: a second run on the same --out (or EM checkpoint) is refused here,
  // before any long work; the checks run again under the lock.
  const releases = [await holdOutput(o.out, '--out')];
  try {
    if (usesEm(method) && !o.noiseFile) {
      const em = await import('./em.js');
      const dir = em.emCheckpointDir(o.out, o);
      await em.checkEmCheckpoint(dir, o as EmOptions, inputs);
      releases.push(await holdOutput(dir, '--checkpoint'));
      await em.checkEmCheckpoint(dir, o as EmOptions, inputs);
    }
    return await protectHeld(o, method, epsilon, rules);
  } finally {
    for (const release of releases) await release();
  }
}

async function protectHeld(
  o: ProtectOptions,
  method: Method,
  epsilon: number,
  rules: OutputRules,
): Promise<Manifest> {
  const inputs = rules.inputs;
  // Written in place of an earlier output only if there was one to replace (--force) when the
  // run began: one that appears meanwhile is kept.
  const replace = await checkOutput(o.out, rules);
  const dataDir = resolve(await resolveDataDir(o));
  const format = o.format ?? defaultFormat(o.dataset);
  const job: PreparedJob =
    o.copyRecords !== false && !o.pipeline && copiesRecords(method, o.dataset, format)
      ? await opsOnRecords(o.dataset as 'cifar10' | 'cifar100', dataDir, o, o.onProgress)
      : await onDecoded(method, dataDir, format, o, epsilon, inputs);
  const manifest = manifestJson({
    method,
    objective: job.fields.objective,
    pixelsPerClass: job.fields.pixelsPerClass,
    height: job.height,
    width: job.width,
    channels: job.channels,
    classes: job.fields.classes,
    source: {
      dataset: o.dataset,
      dataDir,
      files: job.files.map((f) => ({ ...f, path: relative(dataDir, f.path) || '.' })),
    },
    output: { format, train: job.train, test: job.test },
    ...(job.fields.noise ? { noise: job.fields.noise } : {}),
    ...(job.fields.pipeline ? { pipeline: job.fields.pipeline } : {}),
  });
  const total = job.train + (job.test ?? 0);
  let written = 0;
  await checkOutput(o.out, rules);
  await writeAtomically(
    o.out,
    async (dir) => {
      await job.write(dir, (n) => o.onProgress?.('write', (written += n), total));
      await job.extraFiles?.(dir);
      await writeFile(join(dir, MANIFEST), manifest);
    },
    { replace },
  );
  return parseManifest(manifest, join(o.out, MANIFEST));
}

/** The general path: open the dataset as images, run the method, write with the format's writer. */
async function onDecoded(
  method: Method,
  dataDir: string,
  format: OutputFormat,
  o: ProtectOptions,
  epsilon: number,
  inputs: Array<string | undefined>,
): Promise<PreparedJob> {
  const splits = await openDataset(o.dataset, dataDir, o);
  const writer = writerFor(format, o.dataset);
  const train = splits.train;
  if (method === 'ops' || method === 'cifar10s')
    checkPixels(o.pixels ?? 1, train.height, train.width);
  const result = await runMethod(method, { train, onProgress: o.onProgress }, o, epsilon, inputs);
  const toWrite: SplitToWrite[] = [{ name: 'train', stream: result.stream }];
  if (splits.test) {
    const test = splits.test;
    toWrite.push({ name: 'test', stream: isDataset(test) ? streamOf(test, 'test image') : test });
  }
  return {
    height: train.height,
    width: train.width,
    channels: train.channels,
    fields: result.fields,
    files: splits.files,
    train: result.stream.count,
    test: splits.test ? toWrite[1].stream.count : null,
    write: (dir, onImage) => writer(dir, toWrite, () => onImage(1)),
    extraFiles: result.extraFiles,
  };
}

/** What both paths give the job: the shape, the method's fields, the files read, the writing. */
type PreparedJob = RecordsJob & Pick<Protected, 'extraFiles'> & Shape;

/** `protect` for a noise method: the name the library had before the one job. */
export function protectWithNoise(o: NoiseProtectOptions): Promise<Manifest> {
  return protect(o);
}
