/** The registry of dataset readers (by --dataset) and writers (by --format). */
import { fail } from '../errors.js';
import type { Dataset, DatasetSplits, ImageStream } from './dataset.js';
import { readCifar10, readCifar100, writeCifar10, writeCifar100 } from './cifar.js';
import {
  readCifar10Python,
  readCifar100Python,
  writeCifar10Python,
  writeCifar100Python,
} from './cifar-python.js';
import { FASHION_MNIST_CLASSES, MNIST_CLASSES, readIdxFolder, writeIdx } from './idx.js';
import { readNpyFolder, writeNpy } from './npy.js';
import { openFolder, writePngFolder } from './folder.js';
import type { DatasetWriter } from './write.js';

export const DATASETS = [
  'cifar10',
  'cifar100',
  'cifar10-python',
  'cifar100-python',
  'fashion-mnist',
  'mnist',
  'folder',
  'npy',
] as const;
export type DatasetKind = (typeof DATASETS)[number];

export const FORMATS = ['cifar', 'cifar-python', 'idx', 'npy', 'png'] as const;
export type OutputFormat = (typeof FORMATS)[number];

export interface OpenOptions {
  /** Folder datasets: convert every image to this many channels (default: the first image's). */
  channels?: 1 | 3;
  /** IDX datasets: class names (default: Fashion-MNIST's or MNIST's by kind). */
  classNames?: string[];
}

function checkKind(kind: string): asserts kind is DatasetKind {
  if (!(DATASETS as readonly string[]).includes(kind))
    fail(`unknown dataset '${kind}' (--dataset); valid: ${DATASETS.join(', ')}`);
}

/** Opens a dataset: in memory for the binary formats, streamed for class folders. */
export async function openDataset(
  kind: string,
  dir: string,
  options: OpenOptions = {},
): Promise<DatasetSplits<Dataset | ImageStream>> {
  checkKind(kind);
  switch (kind) {
    case 'cifar10':
      return readCifar10(dir);
    case 'cifar100':
      return readCifar100(dir);
    case 'cifar10-python':
      return readCifar10Python(dir);
    case 'cifar100-python':
      return readCifar100Python(dir);
    case 'fashion-mnist':
      return readIdxFolder(dir, options.classNames ?? FASHION_MNIST_CLASSES);
    case 'mnist':
      return readIdxFolder(dir, options.classNames ?? MNIST_CLASSES);
    case 'folder':
      return openFolder(dir, { channels: options.channels });
    case 'npy':
      return readNpyFolder(dir);
  }
}

/** The format a dataset is written in when --format is not given: its own, where one exists. */
export function defaultFormat(kind: DatasetKind): OutputFormat {
  if (kind === 'cifar10' || kind === 'cifar100') return 'cifar';
  if (kind === 'cifar10-python' || kind === 'cifar100-python') return 'cifar-python';
  if (kind === 'fashion-mnist' || kind === 'mnist') return 'idx';
  if (kind === 'npy') return 'npy';
  return 'png';
}

export function writerFor(format: string, kind: DatasetKind): DatasetWriter {
  if (!(FORMATS as readonly string[]).includes(format))
    fail(`unknown format '${format}' (--format); valid: ${FORMATS.join(', ')}`);
  const c100 = kind === 'cifar100' || kind === 'cifar100-python';
  if (format === 'cifar') return c100 ? writeCifar100 : writeCifar10;
  if (format === 'cifar-python') return c100 ? writeCifar100Python : writeCifar10Python;
  if (format === 'idx') return writeIdx;
  if (format === 'npy') return writeNpy;
  return writePngFolder;
}

/** The reader that reads back what `format` wrote from a `kind` source. */
export function readerKindFor(format: OutputFormat, kind: DatasetKind): DatasetKind {
  const c100 = kind === 'cifar100' || kind === 'cifar100-python';
  if (format === 'cifar') return c100 ? 'cifar100' : 'cifar10';
  if (format === 'cifar-python') return c100 ? 'cifar100-python' : 'cifar10-python';
  if (format === 'idx') return kind === 'mnist' ? 'mnist' : 'fashion-mnist';
  if (format === 'npy') return 'npy';
  return 'folder';
}
