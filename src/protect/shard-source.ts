/**
 * A dataset as a protect shard sees it: the training split's shape and count, a fingerprint every
 * shard computes alike, and streams of any run of its records. Class folders are listed, not read:
 * a shard decodes and hashes only its own files, so no machine reads the whole dataset. The binary
 * formats (CIFAR, IDX, NumPy) are read whole, as unsharded protect reads them.
 */
import { createHash } from 'node:crypto';
import { relative, resolve } from 'node:path';
import type { Dataset, ImageStream, SourceFile } from '../data/dataset.js';
import { imageAt, isDataset, streamOf } from '../data/dataset.js';
import { datasetFingerprint } from '../data/files.js';
import {
  type FolderFileHash,
  type FolderListing,
  folderFilesStream,
  hashFolderFiles,
  listFolder,
} from '../data/folder.js';
import { type DatasetKind, type OpenOptions, openDataset } from '../data/formats.js';
import type { SplitLabels, SplitShape } from '../data/parts.js';
import { fail } from '../errors.js';

export interface ShardSource {
  kind: DatasetKind;
  /** Absolute, as the manifest records it. */
  dataDir: string;
  train: SplitShape;
  testCount: number | null;
  /** Binary formats: a hash of the training images and labels; folders: of the file listing. */
  fingerprint: string;
  /** Records [first, first + count) of the training split, in order. */
  trainPart(first: number, count: number): ImageStream;
  /** Every training label (fine, and coarse where the format has them, else 0). */
  trainLabels(): Promise<SplitLabels>;
  /** The whole test split (unchanged in the output). */
  test(): ImageStream | null;
  /** Binary formats: the input files, paths relative to dataDir (as the manifest has them). */
  sourceFiles: SourceFile[] | null;
  /** Folders: content hashes of a run of a split's files. */
  hashFiles(split: 'train' | 'test', first: number, count: number): Promise<FolderFileHash[]>;
  /** Folders: the split folders, relative to dataDir (the manifest's paths). */
  splitDirs: { train: string; test: string | null } | null;
}

function rangeOf(ds: Dataset, first: number, count: number, origin: string): ImageStream {
  return {
    height: ds.height,
    width: ds.width,
    channels: ds.channels,
    classNames: ds.classNames,
    coarseClassNames: ds.coarseClassNames,
    count,
    async *records() {
      for (let i = first; i < first + count; i++)
        yield {
          image: imageAt(ds, i),
          label: ds.labels[i],
          coarseLabel: ds.coarseLabels?.[i],
          ref: `${origin} ${i}`,
        };
    },
  };
}

function listingFingerprint(l: FolderListing): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ shape: l.shape, classNames: l.train.classNames }) + '\n');
  for (const f of l.train.files) h.update(`train ${f.label} ${f.rel}\n`);
  for (const f of l.test?.files ?? []) h.update(`test ${f.label} ${f.rel}\n`);
  return h.digest('hex');
}

export async function openShardSource(
  kind: DatasetKind,
  dataDir: string,
  options: OpenOptions,
): Promise<ShardSource> {
  const dir = resolve(dataDir);
  if (kind === 'folder') {
    const l = await listFolder(dir, options.channels);
    const splitOf = (s: 'train' | 'test') => {
      const split = s === 'train' ? l.train : l.test;
      if (!split) fail(`${dir}: has no test split`);
      return split;
    };
    return {
      kind,
      dataDir: dir,
      train: { ...l.shape, classNames: l.train.classNames, count: l.train.files.length },
      testCount: l.test ? l.test.files.length : null,
      fingerprint: listingFingerprint(l),
      trainPart: (first, count) =>
        folderFilesStream(l, l.train, l.train.files.slice(first, first + count)),
      trainLabels: () =>
        Promise.resolve({
          fine: Int32Array.from(l.train.files, (f) => f.label),
          coarse: new Int32Array(l.train.files.length),
        }),
      test: () => (l.test ? folderFilesStream(l, l.test, l.test.files) : null),
      sourceFiles: null,
      hashFiles: (s, first, count) => hashFolderFiles(splitOf(s).files.slice(first, first + count)),
      splitDirs: {
        train: relative(dir, l.train.dir) || '.',
        test: l.test ? relative(dir, l.test.dir) || '.' : null,
      },
    };
  }
  const splits = await openDataset(kind, dir, options);
  const train = splits.train;
  const test = splits.test;
  if (!isDataset(train) || (test && !isDataset(test)))
    throw new Error(`unreachable: ${kind} is read into memory`);
  return {
    kind,
    dataDir: dir,
    train: {
      height: train.height,
      width: train.width,
      channels: train.channels,
      classNames: train.classNames,
      coarseClassNames: train.coarseClassNames,
      count: train.labels.length,
    },
    testCount: test ? (test as Dataset).labels.length : null,
    fingerprint: datasetFingerprint(train),
    trainPart: (first, count) => rangeOf(train, first, count, 'train image'),
    trainLabels: () =>
      Promise.resolve({
        fine: train.labels,
        coarse: train.coarseLabels
          ? Int32Array.from(train.coarseLabels)
          : new Int32Array(train.labels.length),
      }),
    test: () => (test ? streamOf(test as Dataset, 'test image') : null),
    sourceFiles: splits.files.map((f) => ({ ...f, path: relative(dir, f.path) || '.' })),
    hashFiles: () => Promise.resolve([]),
    splitDirs: null,
  };
}
