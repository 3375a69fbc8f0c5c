/** File helpers shared by readers and writers: hashing inputs, buffered (optionally gzipped) output. */
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
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

/** Collects small writes into large chunks and writes them out with back-pressure. */
export class ChunkedWriter {
  private readonly out: WriteStream;
  private readonly gzip: Gzip | null;
  private buf: Buffer;
  private used = 0;

  constructor(path: string, options: { gzip?: boolean; chunkBytes?: number } = {}) {
    this.out = createWriteStream(path);
    this.gzip = options.gzip ? createGzip() : null;
    if (this.gzip) this.gzip.pipe(this.out);
    this.buf = Buffer.allocUnsafe(options.chunkBytes ?? 4 << 20);
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.used + bytes.length > this.buf.length) await this.flush();
    if (bytes.length > this.buf.length) {
      await this.push(Buffer.from(bytes));
      return;
    }
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const chunk = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.used = 0;
    await this.push(chunk);
  }

  private async push(chunk: Buffer): Promise<void> {
    const target = this.gzip ?? this.out;
    if (!target.write(chunk)) await once(target, 'drain');
  }

  async close(): Promise<void> {
    await this.flush();
    const done = once(this.out, 'close');
    (this.gzip ?? this.out).end();
    await done;
  }
}
