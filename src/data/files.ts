/** File helpers shared by readers and writers: hashing inputs, buffered (optionally gzipped) output. */
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { gunzipSync, createGzip, type Gzip } from 'node:zlib';
import { fail } from '../errors.js';
import type { SourceFile } from './dataset.js';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
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
 * Collects small writes into one reused chunk and writes it out when full: plain files through a
 * file handle, gzipped ones through zlib's stream with back-pressure.
 */
export class ChunkedWriter {
  private readonly gzip: Gzip | null;
  private readonly out: WriteStream | null;
  private handle: Promise<FileHandle> | null;
  private readonly buf: Buffer;
  private used = 0;

  constructor(path: string, options: { gzip?: boolean; chunkBytes?: number } = {}) {
    this.buf = Buffer.allocUnsafe(options.chunkBytes ?? 4 << 20);
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
    if (this.used + bytes.length > this.buf.length) await this.flush();
    if (bytes.length > this.buf.length) return this.push(bytes);
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const n = this.used;
    this.used = 0;
    await this.push(this.buf.subarray(0, n));
  }

  private async push(chunk: Uint8Array): Promise<void> {
    if (this.gzip) {
      // zlib copies nothing before it is done with the chunk, so wait for it before reuse.
      await new Promise<void>((res, rej) =>
        (this.gzip as Gzip).write(chunk, (e) => (e ? rej(e) : res())),
      );
      return;
    }
    const fh = await (this.handle as Promise<FileHandle>);
    let off = 0;
    while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
  }

  async close(): Promise<void> {
    await this.flush();
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
