/**
 * OPS from CIFAR binary to CIFAR binary, record bytes in and record bytes out: every file is read
 * (hashed, labels checked) while a worker sums the statistics straight from its planes; the pixels
 * are chosen; the files are read again (and must hash as before), the chosen bytes are written
 * over each record, and the records are written out. Nothing is converted to pixel order and back,
 * and only a few small buffers are touched, so protect costs about what reading the files twice,
 * hashing and writing them costs. The output is byte for byte the one of the general path (decode,
 * stream, encode); test/ops-records.test.ts compares them.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  cifar100Folder,
  cifar10Folder,
  cifar10TrainFiles,
  type CifarFolder,
  writeCifarNames,
} from '../data/cifar.js';
import { PIXELS, PLANE, SIDE } from '../data/cifar-decode.js';
import {
  CHUNK_RECORDS,
  copyCifarRecords,
  type RecordFile,
  recordFiles,
  scanCifarFiles,
} from '../data/cifar-records.js';
import type { Shape, SourceFile } from '../data/dataset.js';
import { RecordStatsPool } from '../shortcut/record-stats.js';
import { type SearchResult, selectPixels } from '../shortcut/search.js';
import type { Phase, Protected } from './method.js';
import { checkPixels, type OpsOptions } from './ops.js';

/** Below this many bytes of records a worker costs more to start than it saves. */
const WORKER_BYTES = 16 << 20;

/** What the protect job needs from a method run on record files. */
export interface RecordsJob extends Shape {
  fields: Protected['fields'];
  files: SourceFile[];
  train: number;
  test: number | null;
  /** Writes the protected folder's files into `dir`. */
  write: (dir: string, onImage: (n: number) => void) => Promise<void>;
}

/** Whether the protect job can run on the record bytes: OPS, CIFAR binary in and out. */
export function copiesRecords(method: string, dataset: string, format: string): boolean {
  return (
    method === 'ops' && (dataset === 'cifar10' || dataset === 'cifar100') && format === 'cifar'
  );
}

/** Per label, [offset in the record, byte] in the order the pixels were chosen (later wins). */
function patchesOf(result: SearchResult, labelBytes: number): Array<Array<[number, number]>> {
  return result.classes.map((cls) =>
    cls.pixels.flatMap((px) =>
      px.value.map((v, c): [number, number] => [
        labelBytes + c * PLANE + px.row * SIDE + px.col,
        v,
      ]),
    ),
  );
}

/** Runs OPS on the CIFAR folder `dataDir` (see the module comment). */
export async function opsOnRecords(
  dataset: 'cifar10' | 'cifar100',
  dataDir: string,
  o: OpsOptions,
  onProgress?: (phase: Phase, done: number, total: number | null) => void,
): Promise<RecordsJob> {
  const folder: CifarFolder =
    dataset === 'cifar10' ? await cifar10Folder(dataDir) : await cifar100Folder(dataDir);
  const objective = o.objective ?? 'official';
  const pixels = o.pixels ?? 1;
  checkPixels(pixels, SIDE, SIDE);
  const { labelBytes } = folder.layout;
  const R = labelBytes + PIXELS;
  const files = await recordFiles(folder);
  const train = files.filter((f) => f.split === 0);
  const test = files.find((f) => f.split === 1) ?? null;
  const total = train.reduce((a, f) => a + f.count, 0);
  const layout = {
    height: SIDE,
    width: SIDE,
    channels: 3,
    recordBytes: R,
    labelAt: labelBytes - 1,
    pixelsAt: labelBytes,
  };
  const threads = availableParallelism() > 1 && total * R >= WORKER_BYTES ? 2 : 1;
  const pool = new RecordStatsPool(
    layout,
    folder.classNames.length,
    objective === 'paper',
    threads,
    CHUNK_RECORDS * R,
  );
  let done = 0;
  let sources: SourceFile[];
  try {
    sources = await scanCifarFiles(folder, files, {
      buffer: () => pool.buffer(),
      chunk: (file, chunk) => {
        pool.add(chunk, file.split === 0);
        if (file.split === 0) onProgress?.('search', (done += chunk.length / R), total);
      },
    });
  } catch (e) {
    await pool.close();
    throw e;
  }
  const result = selectPixels(await pool.finish(), folder.classNames, { objective, pixels });
  const patches = patchesOf(result, labelBytes);
  const c100 = dataset === 'cifar100';
  const hashOf = (f: RecordFile) => sources[files.indexOf(f)].sha256;
  return {
    height: SIDE,
    width: SIDE,
    channels: 3,
    fields: { objective, pixelsPerClass: pixels, classes: result.classes },
    files: sources,
    train: total,
    test: test ? test.count : null,
    write: async (dir, onImage) => {
      const outputs = c100
        ? [{ path: join(dir, 'train.bin'), records: total }]
        : cifar10TrainFiles(dir, total);
      const edit = (chunk: Uint8Array) => {
        for (let off = 0; off < chunk.length; off += R)
          for (const [at, v] of patches[chunk[off + labelBytes - 1]]) chunk[off + at] = v;
      };
      await copyCifarRecords(R, train, train.map(hashOf), outputs, edit, onImage);
      if (test) {
        const out = [
          { path: join(dir, c100 ? 'test.bin' : 'test_batch.bin'), records: test.count },
        ];
        await copyCifarRecords(R, [test], [hashOf(test)], out, () => undefined, onImage);
      }
      await writeCifarNames(dir, c100, folder.classNames, folder.coarseClassNames);
    },
  };
}
