/** File helpers shared by readers and writers: hashing inputs, buffered (optionally gzipped) output. */
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { constants as bufferConstants } from 'node:buffer';
import { createGunzip, createGzip, gunzipSync, type Gzip } from 'node:zlib';
import { fail, OnepixelError, withPath } from '../errors.js';
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
    // Too large for one buffer (ERR_FS_FILE_TOO_LARGE), unreadable (EACCES, EIO), …
    fail(`${path}: cannot be read (${what}): ${(e as Error).message}`);
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

/**
 * gunzip when the bytes start with the gzip magic, inflating at most `maxBytes` (refused past
 * that), with errors naming the file. Readers whose header implies the size use gunzipBounded.
 */
export function maybeGunzip(
  path: string,
  bytes: Buffer,
  maxBytes = bufferConstants.MAX_LENGTH,
): Buffer {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      fail(`${path}: gzip data inflates past ${maxBytes} bytes`);
    fail(`${path}: corrupt gzip data (${(e as Error).message})`);
  }
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Deflate cannot do better than about 1032:1; gzip framing adds a few bytes. */
const MAX_INFLATE_RATIO = 1032;

/**
 * Inflates gzip `bytes` whose plain size follows from its first `headerBytes` plain bytes:
 * `plainSize(header)` checks that header (it may fail) and returns the whole plain size. Output is
 * never let past that size: a size that `bytes` could not inflate to is refused before inflating,
 * a stream that inflates past it is stopped there, one that ends short of it is refused; every
 * error names the file. (zlib's `maxOutputLength` does the same for one-shot calls; the stream is
 * used so that the header can be read first and the output allocated once, at its exact size.)
 */
export function gunzipBounded(
  path: string,
  bytes: Uint8Array,
  headerBytes: number,
  plainSize: (header: Buffer) => number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = createGunzip();
    let out: Buffer | null = null;
    let head = Buffer.alloc(0);
    let got = 0;
    let done = false;
    const stop = (e: unknown) => {
      if (done) return;
      done = true;
      z.destroy();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    const refuse = (message: string) => stop(new OnepixelError(`${path}: ${message}`));
    z.on('data', (chunk: Buffer) => {
      if (done) return;
      try {
        if (!out) {
          head = Buffer.concat([head, chunk]);
          if (head.length < headerBytes) return;
          const size = plainSize(head.subarray(0, headerBytes));
          if (size > bufferConstants.MAX_LENGTH || size > MAX_INFLATE_RATIO * bytes.length + 1024)
            return refuse(
              `its header implies ${size} bytes, more than ${bytes.length} gzip bytes can inflate to`,
            );
          out = Buffer.allocUnsafe(size);
          chunk = head;
        }
        if (got + chunk.length > out.length)
          return refuse(
            `gzip data inflates past the ${out.length} bytes its header implies (over-long)`,
          );
        out.set(chunk, got);
        got += chunk.length;
      } catch (e) {
        stop(e);
      }
    });
    z.on('error', (e) => refuse(`corrupt gzip data (${e.message})`));
    z.on('end', () => {
      if (done) return;
      done = true;
      if (!out)
        return reject(
          new OnepixelError(
            `${path}: gzip data inflates to ${head.length} bytes, shorter than its ${headerBytes}-byte header`,
          ),
        );
      if (got !== out.length)
        return reject(
          new OnepixelError(
            `${path}: gzip data inflates to ${got} bytes, short of the ${out.length} its header implies (truncated)`,
          ),
        );
      resolve(out);
    });
    z.end(bytes);
  });
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
  private readonly path: string;
  private failed: Promise<never> = new Promise<never>(() => undefined);

  constructor(path: string, options: { gzip?: boolean; chunkBytes?: number } = {}) {
    const size = options.chunkBytes ?? 4 << 20;
    this.bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    this.path = path;
    if (options.gzip) {
      this.out = createWriteStream(path);
      this.gzip = createGzip();
      this.gzip.pipe(this.out);
      // A failing file (a full disk) stops the pipe: every wait below ends with its error.
      this.failed = new Promise<never>((_, rej) =>
        (this.out as WriteStream).once('error', (e) => rej(withPath(e, path))),
      );
      this.failed.catch(() => undefined);
      this.handle = null;
    } else {
      this.out = null;
      this.gzip = null;
      this.handle = open(path, 'w');
      this.handle.catch(() => undefined); // reported by the write that awaits it
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
    // Awaited later (drain, or the next flush of this chunk): not an unhandled rejection meanwhile.
    this.pending[i]?.catch(() => undefined);
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
      await Promise.race([
        new Promise<void>((res, rej) =>
          (this.gzip as Gzip).write(chunk, (e) => (e ? rej(e) : res())),
        ),
        this.failed,
      ]);
      return;
    }
    const fh = await (this.handle as Promise<FileHandle>);
    // Writes land in order: each push waits for the one started before it.
    const before = this.tail;
    const done = (async () => {
      await before;
      let off = 0;
      try {
        while (off < chunk.length)
          off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      } catch (e) {
        throw withPath(e, this.path);
      }
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
      await Promise.race([done, this.failed]);
      return;
    }
    await (await (this.handle as Promise<FileHandle>)).close();
    this.handle = null;
  }
}
