/**
 * The protect job: open a dataset, search the shortcut pixels on its training split, and write the
 * protected training split (test split unchanged) plus manifest.json, atomically.
 */
import { writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fail } from './errors.js';
import type { Dataset, ImageStream } from './data/dataset.js';
import { imageSize, isDataset, streamOf } from './data/dataset.js';
import { DownloadSpec, DOWNLOADS, downloadDataset } from './data/download.js';
import {
  type DatasetKind,
  type OpenOptions,
  type OutputFormat,
  defaultFormat,
  openDataset,
  writerFor,
} from './data/formats.js';
import type { SplitToWrite } from './data/write.js';
import { MANIFEST, type Manifest, manifestJson, parseManifest } from './manifest.js';
import { checkOutput, writeAtomically } from './output.js';
import { applyToImage } from './shortcut/apply.js';
import { datasetStatsParallel } from './shortcut/parallel-stats.js';
import { type Objective, type SearchResult, selectPixels } from './shortcut/search.js';
import { type ClassStats, streamStats } from './shortcut/stats.js';

export type Phase = 'download' | 'search' | 'write';

export interface ProtectOptions extends OpenOptions {
  dataset: DatasetKind;
  dataDir: string;
  out: string;
  format?: OutputFormat;
  objective?: Objective;
  pixels?: number;
  force?: boolean;
  /** Fetch CIFAR-10/100 from the official location into dataDir when it is not there. */
  download?: boolean;
  /** Progress: phase, items done, items in all (null when unknown). */
  onProgress?: (phase: Phase, done: number, total: number | null) => void;
}

/** The training split as a stream with the chosen pixels written in (copies; the source stays). */
export function protectedStream(stream: ImageStream, result: SearchResult): ImageStream {
  return {
    ...stream,
    async *records() {
      // One scratch image for the whole stream (records are valid until the next is read):
      // fresh memory for every image costs page faults that dominate a fast write.
      const image = new Uint8Array(imageSize(stream));
      for await (const rec of stream.records()) {
        image.set(rec.image);
        applyToImage(image, stream.width, stream.channels, result.classes[rec.label]);
        yield { ...rec, image };
      }
    },
  };
}

async function gatherStats(
  train: Dataset | ImageStream,
  withCross: boolean,
  progress: (done: number) => void,
): Promise<ClassStats> {
  if (isDataset(train)) return datasetStatsParallel(train, withCross);
  return streamStats(train, withCross, progress);
}

async function resolveDataDir(o: ProtectOptions): Promise<string> {
  if (!o.download) return o.dataDir;
  if (o.dataset !== 'cifar10' && o.dataset !== 'cifar100')
    fail(`--download fetches cifar10 and cifar100 only, not '${o.dataset}'`);
  const spec: DownloadSpec = DOWNLOADS[o.dataset];
  return downloadDataset(spec, o.dataDir, {
    onProgress: (received, total) => o.onProgress?.('download', received, total),
  });
}

/** Protects a dataset on disk; returns the manifest written next to the data. */
export async function protect(o: ProtectOptions): Promise<Manifest> {
  const force = o.force ?? false;
  await checkOutput(o.out, force);
  const dataDir = resolve(await resolveDataDir(o));
  const splits = await openDataset(o.dataset, dataDir, o);
  const format = o.format ?? defaultFormat(o.dataset);
  const writer = writerFor(format, o.dataset);
  const train = splits.train;
  const objective = o.objective ?? 'official';
  const pixels = o.pixels ?? 1;
  if (!Number.isInteger(pixels) || pixels < 1 || pixels > train.height * train.width)
    fail(
      `--pixels ${pixels}: expected an integer from 1 to H×W = ${train.height * train.width} ` +
        `for ${train.height}×${train.width} images`,
    );
  const trainCount = isDataset(train) ? train.labels.length : train.count;
  const stats = await gatherStats(train, objective === 'paper', (d) =>
    o.onProgress?.('search', d, trainCount),
  );
  const result = selectPixels(stats, train.classNames, { objective, pixels });
  const trainStream = isDataset(train) ? streamOf(train, 'train image') : train;
  const toWrite: SplitToWrite[] = [{ name: 'train', stream: protectedStream(trainStream, result) }];
  if (splits.test) {
    const test = splits.test;
    toWrite.push({ name: 'test', stream: isDataset(test) ? streamOf(test, 'test image') : test });
  }
  const total = toWrite.reduce((s, w) => s + w.stream.count, 0);
  const manifest = manifestJson({
    objective,
    pixelsPerClass: pixels,
    height: train.height,
    width: train.width,
    channels: train.channels,
    classes: result.classes,
    source: {
      dataset: o.dataset,
      dataDir,
      files: splits.files.map((f) => ({ ...f, path: relative(dataDir, f.path) || '.' })),
    },
    output: { format, train: trainCount, test: splits.test ? toWrite[1].stream.count : null },
  });
  let written = 0;
  await writeAtomically(o.out, force, async (dir) => {
    await writer(dir, toWrite, () => o.onProgress?.('write', ++written, total));
    await writeFile(join(dir, MANIFEST), manifest);
  });
  return parseManifest(manifest, join(o.out, MANIFEST));
}
