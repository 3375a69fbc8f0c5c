/**
 * OPS that knows the trainer's pipeline (`protect --pipeline resize:S[:interp] [--block-margin M]`):
 * a photograph is resized before training (torchvision's `Resize`, antialiased), which averages a
 * single pixel with its neighbours and loses it. So the search runs on the training split as the
 * trainer will see it (every image resized to S×S exactly as transforms/resize.ts does it, PIL's
 * bytes), and each chosen pixel (row, col) of the S×S grid is written into the full-size image as
 * the block of source pixels that feed it: the rows and columns inside PIL's filter support for
 * that output pixel, widened by M pixels on every side. Every tap of that output pixel then reads
 * the extreme value, so after the resize it is exactly 0 or 255 per channel (test/ops-pipeline.test.ts
 * checks this with torchvision), while its neighbours get a partial shade.
 *
 * The manifest keeps the pixels at the search resolution (classes[].pixels, rows and columns of
 * the S×S grid) and records the pipeline, the margin and each pixel's block in the full-size image.
 */
import type { Dataset, ImageStream } from '../data/dataset.js';
import { imageSize, isDataset, streamOf } from '../data/dataset.js';
import { materialize } from '../data/materialize.js';
import { fail } from '../errors.js';
import type { PipelineRecord, PixelBlock } from '../manifest.js';
import { datasetStatsParallel } from '../shortcut/parallel-stats.js';
import { type SearchResult, selectPixels } from '../shortcut/search.js';
import {
  INTERPOLATIONS,
  type Interpolation,
  resampleTaps,
  resizePil,
  type Taps,
} from '../transforms/resize.js';
import type { MethodInput, Protected } from './method.js';
import { checkPixels, type OpsOptions } from './ops.js';

export interface PipelineOptions {
  /** The trainer's resize: `resize:S[:interp]` (interp bilinear by default, torchvision's). */
  pipeline: string;
  /** Pixels added to every side of each block (default 0). */
  blockMargin?: number;
}

/** Parses `resize:S[:interp]`; errors name --pipeline. */
export function parsePipeline(text: string): { size: number; interp: Interpolation } {
  const [name, size, interp = 'bilinear', ...rest] = text.trim().toLowerCase().split(':');
  const s = Number(size);
  if (name !== 'resize' || rest.length > 0 || !/^\d+$/.test(size ?? '') || s < 1 || s > 4096)
    fail(`--pipeline: expected resize:S[:interp] with S an integer 1–4096 (got '${text}')`);
  if (!(INTERPOLATIONS as readonly string[]).includes(interp) || interp === 'nearest')
    fail(
      `--pipeline: interpolation must be one of bilinear, bicubic, lanczos (got '${interp}'); ` +
        'nearest keeps single pixels already',
    );
  return { size: s, interp: interp as Interpolation };
}

/** The span [start, end) of source indices that feed output index i, widened by `margin`. */
function span(t: Taps, i: number, margin: number, n: number): [number, number] {
  return [Math.max(t.start[i] - margin, 0), Math.min(t.start[i] + t.count[i] + margin, n)];
}

/** Each class's blocks in the full-size image, one per chosen pixel, in the search's order. */
export function pixelBlocks(
  result: SearchResult,
  height: number,
  width: number,
  interp: Interpolation,
  margin: number,
): PixelBlock[][] {
  const rows = resampleTaps(height, result.height, interp);
  const cols = resampleTaps(width, result.width, interp);
  return result.classes.map((cls) =>
    cls.pixels.map((p) => {
      const [top, bottom] = span(rows, p.row, margin, height);
      const [left, right] = span(cols, p.col, margin, width);
      return { top, left, height: bottom - top, width: right - left };
    }),
  );
}

/** Writes a class's blocks into one H×W×C image, in place (later pixels win where they overlap). */
export function applyBlocks(
  image: Uint8Array,
  width: number,
  channels: number,
  blocks: PixelBlock[],
  values: number[][],
): void {
  blocks.forEach((b, k) => {
    for (let y = b.top; y < b.top + b.height; y++)
      for (let x = b.left; x < b.left + b.width; x++) {
        const o = (y * width + x) * channels;
        for (let c = 0; c < channels; c++) image[o + c] = values[k][c];
      }
  });
}

function blockStream(
  stream: ImageStream,
  blocks: PixelBlock[][],
  result: SearchResult,
): ImageStream {
  const values = result.classes.map((c) => c.pixels.map((p) => p.value));
  return {
    ...stream,
    async *records() {
      const image = new Uint8Array(imageSize(stream));
      for await (const rec of stream.records()) {
        image.set(rec.image);
        applyBlocks(image, stream.width, stream.channels, blocks[rec.label], values[rec.label]);
        yield { ...rec, image };
      }
    },
  };
}

/** The training split resized to S×S as the trainer's `resize:S[:interp]` does it. */
function resized(ds: Dataset, size: number, interp: Interpolation): Dataset {
  const n = ds.labels.length;
  const inSize = imageSize(ds);
  const per = size * size * ds.channels;
  const images = new Uint8Array(n * per);
  for (let i = 0; i < n; i++)
    images.set(
      resizePil(ds.images.subarray(i * inSize, (i + 1) * inSize), ds, size, size, interp),
      i * per,
    );
  return { ...ds, height: size, width: size, images };
}

export async function opsPipeline(
  input: MethodInput,
  o: OpsOptions & PipelineOptions,
): Promise<Protected> {
  const { size, interp } = parsePipeline(o.pipeline);
  const margin = o.blockMargin ?? 0;
  if (!Number.isInteger(margin) || margin < 0 || margin > 4096)
    fail(`--block-margin ${margin}: expected an integer 0–4096`);
  const objective = o.objective ?? 'official';
  const pixels = o.pixels ?? 1;
  checkPixels(pixels, size, size);
  const train: Dataset = isDataset(input.train) ? input.train : await materialize(input.train);
  if (size > Math.min(train.height, train.width))
    fail(
      `--pipeline ${o.pipeline}: the trainer's size must not exceed the images' ` +
        `${train.height}×${train.width} (the block is for downscaling)`,
    );
  input.onProgress?.('search', 0, train.labels.length);
  const small = resized(train, size, interp);
  const stats = await datasetStatsParallel(small, objective === 'paper');
  const result = selectPixels(stats, train.classNames, { objective, pixels });
  input.onProgress?.('search', train.labels.length, train.labels.length);
  const blocks = pixelBlocks(result, train.height, train.width, interp, margin);
  const pipeline: PipelineRecord = {
    pipeline: `resize:${size}:${interp}`,
    searchHeight: size,
    searchWidth: size,
    blockMargin: margin,
    blocks,
  };
  return {
    stream: blockStream(streamOf(train, 'train image'), blocks, result),
    fields: { objective, pixelsPerClass: pixels, classes: result.classes, pipeline },
  };
}
