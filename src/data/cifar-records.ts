/**
 * CIFAR binary files read as they are, record bytes and all, for a job that writes the same
 * layout back (OPS with CIFAR in and CIFAR out). Two passes through a few small reused buffers
 * (fresh memory is expensive to touch here: reading 30 MB into new memory takes over ten times
 * as long as into memory used before):
 *
 * - `scanCifarFiles` reads every file a chunk of records at a time, hashes it and checks its
 *   labels (the same errors as the decoding reader, ./cifar.ts), and hands each chunk on, e.g. to
 *   a worker that sums statistics from it while the next chunk is read;
 * - `copyCifarRecords` reads the files again, checks that each is still the file hashed in the
 *   first pass, lets the caller write over bytes of each record, and writes the records out.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { fail, withPath } from '../errors.js';
import { throwIfAborting } from '../output.js';
import type { SourceFile } from './dataset.js';
import { type CifarFolder, fileSize, recordCount } from './cifar.js';
import { openBatch, PIXELS } from './cifar-decode.js';

/** Records read at a time (about 3 MB). */
export const CHUNK_RECORDS = 1024;

/** A file of the folder: its split (0 train, 1 test) and records. */
export interface RecordFile {
  path: string;
  split: number;
  bytes: number;
  count: number;
  what: string;
}

/** Every file of the folder, sized and counted (errors name the file). */
export async function recordFiles(folder: CifarFolder): Promise<RecordFile[]> {
  const R = folder.layout.labelBytes + PIXELS;
  const files: RecordFile[] = [];
  for (const [split, { paths, what }] of folder.splits.entries())
    for (const path of paths) {
      const bytes = await fileSize(path, what);
      files.push({ path, split, bytes, count: recordCount(path, bytes, R), what });
    }
  return files;
}

/** Reads a file a chunk at a time; a file that changes size while read fails. */
async function eachChunk(
  file: RecordFile,
  recordBytes: number,
  buffer: () => Promise<Uint8Array> | Uint8Array,
  use: (chunk: Uint8Array, first: number) => Promise<void> | void,
): Promise<void> {
  const fh: FileHandle = await openBatch(file.path, file.what);
  try {
    for (let first = 0; first < file.count; first += CHUNK_RECORDS) {
      throwIfAborting(); // a signal: stop between chunks (the abort removes the output)
      const n = Math.min(CHUNK_RECORDS, file.count - first);
      const chunk = (await buffer()).subarray(0, n * recordBytes);
      let got = 0;
      while (got < chunk.length) {
        const { bytesRead } = await fh.read(
          chunk,
          got,
          chunk.length - got,
          first * recordBytes + got,
        );
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got !== chunk.length)
        fail(`${file.path}: changed while being read (shorter than ${file.bytes} bytes)`);
      await use(chunk, first);
    }
    if ((await fh.read(Buffer.alloc(1), 0, 1, file.bytes)).bytesRead !== 0)
      fail(`${file.path}: changed while being read (longer than ${file.bytes} bytes)`);
  } finally {
    await fh.close();
  }
}

/** Label bytes outside the layout's classes fail, naming the file and record. */
function checkLabels(folder: CifarFolder, file: RecordFile, chunk: Uint8Array, first: number) {
  const { labelBytes, fineClasses, coarseClasses } = folder.layout;
  const R = labelBytes + PIXELS;
  for (let off = 0, r = first; off < chunk.length; off += R, r++) {
    const label = chunk[off + labelBytes - 1];
    if (label >= fineClasses)
      fail(`${file.path} record ${r}: label byte ${label}, expected 0..${fineClasses - 1}`);
    if (labelBytes === 2 && chunk[off] >= coarseClasses)
      fail(
        `${file.path} record ${r}: coarse label byte ${chunk[off]}, expected 0..${coarseClasses - 1}`,
      );
  }
}

/** Where the chunks of the first pass go. */
export interface ChunkSink {
  /** A buffer of at least CHUNK_RECORDS records to read the next chunk into. */
  buffer: () => Promise<Uint8Array> | Uint8Array;
  /** A chunk read, hashed and checked; the buffer is the sink's again. */
  chunk: (file: RecordFile, chunk: Uint8Array) => void;
}

/** First pass: reads, hashes and checks every file; returns each with its SHA-256. */
export async function scanCifarFiles(
  folder: CifarFolder,
  files: RecordFile[],
  sink: ChunkSink,
): Promise<SourceFile[]> {
  const R = folder.layout.labelBytes + PIXELS;
  const out: SourceFile[] = [];
  for (const file of files) {
    const hash = createHash('sha256');
    await eachChunk(file, R, sink.buffer, (chunk, first) => {
      hash.update(chunk);
      checkLabels(folder, file, chunk, first);
      sink.chunk(file, chunk);
    });
    out.push({ path: file.path, bytes: file.bytes, sha256: hash.digest('hex') });
  }
  return out;
}

/**
 * Second pass: the records of `files` (back to back, in order) into `outputs` (each its count of
 * records; the input's file boundaries need not be the output's), each chunk passed to `edit`
 * first. Every file must hash as it did in the first pass (`hashes`, in the order of `files`).
 */
export async function copyCifarRecords(
  recordBytes: number,
  files: RecordFile[],
  hashes: string[],
  outputs: Array<{ path: string; records: number }>,
  edit: (chunk: Uint8Array) => void,
  onRecords: (n: number) => void,
): Promise<void> {
  const buf = Buffer.allocUnsafeSlow(CHUNK_RECORDS * recordBytes);
  let o = 0;
  let left = 0;
  let out: FileHandle | null = null;
  try {
    for (const [i, file] of files.entries()) {
      const hash = createHash('sha256');
      await eachChunk(
        file,
        recordBytes,
        () => buf,
        async (chunk) => {
          hash.update(chunk);
          edit(chunk);
          for (let at = 0; at < chunk.length;) {
            while (left === 0) {
              await out?.close();
              out = null;
              if (o === outputs.length) fail(`${file.path}: more records than were read before`);
              out = await open(outputs[o].path, 'w');
              left = outputs[o++].records;
            }
            const n = Math.min(left, (chunk.length - at) / recordBytes);
            const path = outputs[o - 1].path;
            for (let w = 0; w < n * recordBytes;) {
              const r = await (out as FileHandle)
                .write(chunk, at + w, n * recordBytes - w)
                .catch((e: unknown) => Promise.reject(withPath(e, path)));
              w += r.bytesWritten;
            }
            at += n * recordBytes;
            left -= n;
            onRecords(n);
          }
        },
      );
      if (hash.digest('hex') !== hashes[i])
        fail(`${file.path}: changed while onepixel was protecting it (its SHA-256 differs)`);
    }
  } finally {
    await (out as FileHandle | null)?.close();
  }
}
