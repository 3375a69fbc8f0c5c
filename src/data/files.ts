/** File helpers shared by readers and writers: hashing inputs, buffered (optionally gzipped) output. */
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { gunzipSync, createGzip, type Gzip } from 'node:zlib';
import { fail } from '../errors.js';
import type { Dataset, SourceFile } from './dataset.js';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** One hash of a split's images and labels (EM checkpoints store it: keep the formula). */
export function datasetFingerprint(ds: Dataset): string {
  const labels = new Uint8Array(ds.labels.buffer, ds.labels.byteOffset, ds.labels.byteLength);
  return sha256(Buffer.concat([Buffer.from(sha256(ds.images)), Buffer.from(sha256(labels))]));
}

export function sourceFile(path: string, bytes: Uint8Array): SourceFile {
  return { path, bytes: bytes.length, sha256: sha256(bytes) };
}

/** Reads a whole file; a missing one fails with the path and what the file was needed for. */
export async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(`${path}: not found (${what})`);
    if (code === 'EISDIR') fail(`${path}: is a folder, expected a file (${what})`);
    throw e;
  }
}

export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** gunzip when the bytes start with the gzip magic, with an error naming the file. */
export function maybeGunzip(path: string, bytes: Buffer): Buffer {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes);
    } catch (e) {
      fail(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  return bytes;
}

/**
 * Collects small writes into chunks and writes them out: plain files through a file handle, with
 * two chunks in turn so one is filled while the other is being written; gzipped ones through
 * zlib's stream with back-pressure. The chunks are reused (fresh memory is slow to touch).
 */
export class ChunkedWriter {
  private readonly gzip: Gzip | null;
  private readonly out: WriteStream | null;
  private handle: Promise<FileHandle> | null;
  private readonly bufs: Buffer[];
  /** The write in flight from each chunk, awaited before the chunk is filled again. */
  private readonly pending: Array<Promise<void> | null> = [null, null];
  private current = 0;
  private used = 0;

  constructor(path: string, options: { gzip?: boolean; chunkBytes?: number } = {}) {
    const size = options.chunkBytes ?? 4 << 20;
    this.bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    if (options.gzip) {
      this.out = createWriteStream(path);
      this.gzip = createGzip();
      this.gzip.pipe(this.out);
      this.handle = null;
    } else {
      this.out = null;
      this.gzip = null;
      this.handle = open(path, 'w');
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    const buf = this.bufs[this.current];
    if (this.used + bytes.length > buf.length) await this.flush();
    if (bytes.length > buf.length) {
      await this.drain();
      return this.push(bytes);
    }
    this.bufs[this.current].set(bytes, this.used);
    this.used += bytes.length;
  }

  /** Starts writing the current chunk and switches to the other one, once that one is free. */
  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const i = this.current;
    const chunk = this.bufs[i].subarray(0, this.used);
    this.pending[i] = this.push(chunk);
    this.current = 1 - i;
    this.used = 0;
    await this.pending[this.current];
    this.pending[this.current] = null;
  }

  private async drain(): Promise<void> {
    await Promise.all(this.pending);
    this.pending.fill(null);
  }

  private async push(chunk: Uint8Array): Promise<void> {
    if (this.gzip) {
      // zlib may still read the chunk until its callback, so the chunk is not reused before.
      await new Promise<void>((res, rej) =>
        (this.gzip as Gzip).write(chunk, (e) => (e ? rej(e) : res())),
      );
      return;
    }
    const fh = await (this.handle as Promise<FileHandle>);
    // Writes land in order: each push waits for the one started before it.
    const before = this.tail;
    const done = (async () => {
      await before;
      let off = 0;
      while (off < chunk.length)
        off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    })();
    this.tail = done.catch(() => undefined);
    return done;
  }

  private tail: Promise<void> = Promise.resolve();

  async close(): Promise<void> {
    await this.flush();
    await this.drain();
    if (this.gzip && this.out) {
      const done = once(this.out, 'close');
      this.gzip.end();
      await done;
      return;
    }
    await (await (this.handle as Promise<FileHandle>)).close();
    this.handle = null;
  }
}
