/**
 * The one in-memory dataset type every reader returns and every writer takes: uint8 images stored
 * image after image, each row-major H×W×C (channels interleaved), with integer labels and names.
 */
import { fail } from '../errors.js';

export interface Shape {
  height: number;
  width: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: number;
}

export interface Dataset extends Shape {
  /** count × height × width × channels bytes, image after image, each H×W×C. */
  images: Uint8Array;
  /** One class index per image, 0 ≤ label < classNames.length. */
  labels: Int32Array;
  classNames: string[];
  /** CIFAR-100's superclass label per image, kept so a CIFAR-100 copy stays a drop-in. */
  coarseLabels?: Uint8Array;
  /** CIFAR-100's superclass names. */
  coarseClassNames?: string[];
}

/** One image of a stream: its pixels (H×W×C), its label, and where it came from (for errors). */
export interface ImageRecord {
  image: Uint8Array;
  label: number;
  coarseLabel?: number;
  /** Human-readable origin, e.g. `data_batch_3.bin record 17` or a file path. */
  ref: string;
}

/**
 * A split that can be read more than once, possibly without holding it in memory. A record's
 * `image` may be reused by the stream for the next record: consume or copy it before asking for
 * the next one.
 */
export interface ImageStream extends Shape {
  classNames: string[];
  coarseClassNames?: string[];
  count: number;
  records(): AsyncIterable<ImageRecord>;
}

/** An input file of a dataset, hashed so the manifest pins exactly what was protected. */
export interface SourceFile {
  path: string;
  bytes: number;
  sha256: string;
}

export type SplitName = 'train' | 'test';

/** What a reader gives back: the training split, the test split where the format has one. */
export interface DatasetSplits<T = Dataset | ImageStream> {
  /** The reader that produced it: cifar10, cifar100, idx, folder, npy. */
  format: string;
  dataDir: string;
  train: T;
  test: T | null;
  files: SourceFile[];
}

export function imageSize(shape: Shape): number {
  return shape.height * shape.width * shape.channels;
}

export function datasetCount(ds: Dataset): number {
  return ds.labels.length;
}

/** Images start … start + count − 1 of `ds` as values in [0, 1] (byte / 255), HWC, one after another. */
export function unitImages(ds: Dataset, start: number, count: number): Float32Array {
  const size = imageSize(ds);
  const src = ds.images.subarray(start * size, (start + count) * size);
  const x = new Float32Array(src.length);
  for (let k = 0; k < x.length; k++) x[k] = src[k] / 255;
  return x;
}

export function isDataset(x: Dataset | ImageStream): x is Dataset {
  return (x as Dataset).images instanceof Uint8Array;
}

/** The image `i` of a dataset, as a view (no copy). */
export function imageAt(ds: Dataset, i: number): Uint8Array {
  const size = imageSize(ds);
  return ds.images.subarray(i * size, (i + 1) * size);
}

/** An in-memory dataset seen as a stream (views, no copies). */
export function streamOf(ds: Dataset, origin = 'image'): ImageStream {
  return {
    height: ds.height,
    width: ds.width,
    channels: ds.channels,
    classNames: ds.classNames,
    coarseClassNames: ds.coarseClassNames,
    count: datasetCount(ds),
    async *records() {
      const n = datasetCount(ds);
      for (let i = 0; i < n; i++) {
        yield {
          image: imageAt(ds, i),
          label: ds.labels[i],
          coarseLabel: ds.coarseLabels?.[i],
          ref: `${origin} ${i}`,
        };
      }
    },
  };
}

/** Checks the invariants every reader promises; `what` names the data in the error. */
export function validateDataset(ds: Dataset, what: string): void {
  const n = datasetCount(ds);
  if (!Number.isInteger(ds.height) || ds.height < 1 || !Number.isInteger(ds.width) || ds.width < 1)
    fail(`${what}: image size ${ds.height}×${ds.width} is not a positive size`);
  if (ds.channels !== 1 && ds.channels !== 3)
    fail(`${what}: ${ds.channels} channels; onepixel reads grayscale (1) or RGB (3) images`);
  if (n === 0) fail(`${what}: the dataset is empty (no images)`);
  if (ds.images.length !== n * imageSize(ds))
    fail(`${what}: ${ds.images.length} pixel bytes for ${n} images of ${imageSize(ds)} bytes`);
  for (let i = 0; i < n; i++) {
    const l = ds.labels[i];
    if (l < 0 || l >= ds.classNames.length)
      fail(`${what}: image ${i} has label ${l}, expected 0..${ds.classNames.length - 1}`);
  }
}

/** Images per class; used to refuse empty and single-image classes before a search. */
export function classCounts(labels: ArrayLike<number>, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}
