/**
 * Training data: any folder onepixel can read (a protected copy with its manifest, or a plain
 * dataset), fully in memory, since training visits every image every epoch.
 */
import { join } from 'node:path';
import { fail } from '../errors.js';
import type { Dataset, DatasetSplits, ImageStream } from '../data/dataset.js';
import { isDataset } from '../data/dataset.js';
import { type DatasetKind, openDataset, readerKindFor } from '../data/formats.js';
import { isFile } from '../data/files.js';
import { MANIFEST, readManifest } from '../manifest.js';
import { materialize } from '../data/materialize.js';

async function inMemory(x: Dataset | ImageStream): Promise<Dataset> {
  return isDataset(x) ? x : materialize(x);
}

/** Guesses a plain dataset's kind from the files it holds. */
async function guessKind(dir: string): Promise<DatasetKind> {
  if (await isFile(join(dir, 'data_batch_1.bin'))) return 'cifar10';
  if (await isFile(join(dir, 'train.bin'))) return 'cifar100';
  if (await isFile(join(dir, 'data_batch_1'))) return 'cifar10-python';
  if ((await isFile(join(dir, 'train'))) && (await isFile(join(dir, 'meta'))))
    return 'cifar100-python';
  if (await isFile(join(dir, 'x_train.npy'))) return 'npy';
  for (const f of ['train-images-idx3-ubyte.gz', 'train-images-idx3-ubyte'])
    if (await isFile(join(dir, f))) return 'fashion-mnist';
  return 'folder';
}

export interface TrainingData {
  train: Dataset;
  test: Dataset;
  /** What the folder is: 'ops' for a protected copy, else the plain dataset kind. */
  kind: string;
  dir: string;
}

/** Opens a folder for training; `kind` overrides the guess for plain datasets. */
export async function openTrainingData(dir: string, kind?: DatasetKind): Promise<TrainingData> {
  let splits: DatasetSplits<Dataset | ImageStream>;
  let what: string;
  if (await isFile(join(dir, MANIFEST))) {
    const m = await readManifest(dir);
    splits = await openDataset(readerKindFor(m.output.format, m.source.dataset), dir, {
      classNames: m.classes.map((c) => c.name),
    });
    what = m.method;
  } else {
    const k = kind ?? (await guessKind(dir));
    splits = await openDataset(k, dir);
    what = k;
  }
  if (!splits.test) fail(`${dir}: no test split; training reports accuracy on the clean test set`);
  return {
    train: await inMemory(splits.train),
    test: await inMemory(splits.test),
    kind: what,
    dir,
  };
}
