/**
 * A held-out split of a CIFAR-10 binary folder: one of its training files becomes the test set,
 * the others the training set, written as an ordinary CIFAR-10 folder (data_batch_1–5.bin holding
 * the remaining training records in their order, spread evenly; test_batch.bin the held-out file's
 * records unchanged; batches.meta.txt) that every command reads as it reads CIFAR-10, plus
 * holdout.json saying where each part came from (with sha256 of every input file).
 *
 * Why: a test set must be exact images. data_batch_5.bin as test and data_batch_1–4.bin as
 * training (40,000 / 10,000) is the protocol of the fast94 evaluation (docs/fast94.md).
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { writeAtomically } from '../output.js';
import { CIFAR10_TRAIN_FILES, cifar10TrainFiles, fileSize, recordCount } from './cifar.js';
import { isFile, sha256 } from './files.js';

/** The file that proves a folder is a held-out split onepixel wrote. */
export const HOLDOUT_MARKER = 'holdout.json';
const RECORD = 3073;

export interface HoldoutInfo {
  format: 'onepixel-holdout-1';
  source: string;
  train: Array<{ file: string; records: number; sha256: string }>;
  test: { file: string; records: number; sha256: string };
}

/**
 * Writes the split of CIFAR-10 folder `src` with training file `testFile` (e.g. data_batch_5.bin)
 * held out as the test set into `out` (atomically: a temporary sibling renamed at the end). The
 * caller checks `out` first (output.ts checkOutput). Fails in one line naming the file for a
 * missing or damaged input.
 */
export async function writeHoldout(
  src: string,
  testFile: string,
  out: string,
): Promise<HoldoutInfo> {
  if (!CIFAR10_TRAIN_FILES.includes(testFile))
    fail(
      `--test ${testFile}: not a CIFAR-10 training file; one of ${CIFAR10_TRAIN_FILES.join(', ')}`,
    );
  const parts: Array<{ file: string; bytes: Buffer }> = [];
  for (const file of CIFAR10_TRAIN_FILES) {
    const path = join(src, file);
    const size = await fileSize(path, 'CIFAR-10 training batch');
    recordCount(path, size, RECORD);
    parts.push({ file, bytes: await readFile(path) });
  }
  const describe = (p: { file: string; bytes: Buffer }) => ({
    file: p.file,
    records: p.bytes.length / RECORD,
    sha256: sha256(p.bytes),
  });
  const test = parts.find((p) => p.file === testFile) as { file: string; bytes: Buffer };
  const train = parts.filter((p) => p.file !== testFile);
  const all = Buffer.concat(train.map((p) => p.bytes));
  const info: HoldoutInfo = {
    format: 'onepixel-holdout-1',
    source: src,
    train: train.map(describe),
    test: describe(test),
  };
  await writeAtomically(out, async (dir) => {
    const files = cifar10TrainFiles(dir, all.length / RECORD);
    let at = 0;
    for (const f of files) {
      await writeFile(f.path, all.subarray(at * RECORD, (at + f.records) * RECORD));
      at += f.records;
    }
    await writeFile(join(dir, 'test_batch.bin'), test.bytes);
    const meta = join(src, 'batches.meta.txt');
    if (await isFile(meta)) await copyFile(meta, join(dir, 'batches.meta.txt'));
    await writeFile(join(dir, HOLDOUT_MARKER), JSON.stringify(info, null, 2) + '\n');
  });
  return info;
}
