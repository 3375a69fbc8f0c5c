/** The One-Pixel Shortcut: per class, the pixel and value found by the search on the training split. */
import type { Dataset, ImageStream } from '../data/dataset.js';
import { imageSize, isDataset, streamOf } from '../data/dataset.js';
import { fail } from '../errors.js';
import { applyToImage } from '../shortcut/apply.js';
import { datasetStatsParallel } from '../shortcut/parallel-stats.js';
import { type Objective, type SearchResult, selectPixels } from '../shortcut/search.js';
import { type ClassStats, streamStats } from '../shortcut/stats.js';
import type { MethodInput, Protected } from './method.js';

export interface OpsOptions {
  objective?: Objective;
  pixels?: number;
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

/** Refuses a pixel count the images cannot hold (before any search). */
export function checkPixels(pixels: number, height: number, width: number): void {
  if (!Number.isInteger(pixels) || pixels < 1 || pixels > height * width)
    fail(
      `--pixels ${pixels}: expected an integer from 1 to H×W = ${height * width} ` +
        `for ${height}×${width} images`,
    );
}

/** Searches the pixels on the training split (`objective`, `pixels` per class). */
export async function searchPixels(
  { train, onProgress }: MethodInput,
  o: OpsOptions,
): Promise<SearchResult> {
  const objective = o.objective ?? 'official';
  const pixels = o.pixels ?? 1;
  checkPixels(pixels, train.height, train.width);
  const count = isDataset(train) ? train.labels.length : train.count;
  const stats = await gatherStats(train, objective === 'paper', (d) =>
    onProgress?.('search', d, count),
  );
  return selectPixels(stats, train.classNames, { objective, pixels });
}

export async function ops(input: MethodInput, o: OpsOptions): Promise<Protected> {
  const result = await searchPixels(input, o);
  const train = input.train;
  const stream = isDataset(train) ? streamOf(train, 'train image') : train;
  return {
    stream: protectedStream(stream, result),
    fields: {
      objective: o.objective ?? 'official',
      pixelsPerClass: o.pixels ?? 1,
      classes: result.classes,
    },
  };
}
