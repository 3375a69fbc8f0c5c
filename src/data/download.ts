/**
 * Fetch the official CIFAR binary archives: stream to a `.part` file while hashing, verify the
 * md5, extract into a temporary folder and rename it into place, so the final folder either holds
 * every expected file or does not exist. Prints nothing; progress goes to `options.onProgress`.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fail } from '../errors.js';
import { replaceDir } from '../output.js';

export interface DownloadSpec {
  name: 'cifar10' | 'cifar100';
  url: string;
  md5: string;
  /** The folder inside the archive: 'cifar-10-batches-bin' | 'cifar-100-binary'. */
  archiveDir: string;
  /** Files (relative to archiveDir) that must exist after extraction. */
  files: string[];
}

export const DOWNLOADS: Record<'cifar10' | 'cifar100', DownloadSpec> = {
  cifar10: {
    name: 'cifar10',
    url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    md5: 'c32a1d4ab5d03f1284b67883e8d87530',
    archiveDir: 'cifar-10-batches-bin',
    files: [
      'data_batch_1.bin',
      'data_batch_2.bin',
      'data_batch_3.bin',
      'data_batch_4.bin',
      'data_batch_5.bin',
      'test_batch.bin',
      'batches.meta.txt',
    ],
  },
  cifar100: {
    name: 'cifar100',
    url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    md5: '03b5dce01913d631647c71ecec9e9cb8',
    archiveDir: 'cifar-100-binary',
    files: ['train.bin', 'test.bin', 'fine_label_names.txt', 'coarse_label_names.txt'],
  },
};

export interface DownloadOptions {
  /** Called with the bytes received so far and the expected total (null when unknown). */
  onProgress?: (received: number, total: number | null) => void;
  /** Replaces the global fetch (tests). */
  fetchImpl?: typeof fetch;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function firstMissing(dir: string, files: string[]): Promise<string | undefined> {
  for (const f of files) {
    if (!(await isFile(join(dir, f)))) return f;
  }
  return undefined;
}

/** A short reason for a failed fetch: undici hides the useful part (ECONNREFUSED…) in `cause`. */
function networkReason(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as Error & { code?: unknown }).code;
      const msg = cause.message || err.message;
      return typeof code === 'string' && !msg.includes(code) ? `${code}: ${msg}` : msg;
    }
    return err.message;
  }
  return String(err);
}

function offlineHint(spec: DownloadSpec, reason: string): string {
  return (
    `could not download ${spec.name} from ${spec.url} (${reason}). ` +
    `onepixel works offline from a local copy: pass --data-dir <folder with the official binary files>`
  );
}

/** The archive's file name, from the URL's last path segment. */
function archiveName(spec: DownloadSpec): string {
  let name = '';
  try {
    name = basename(new URL(spec.url).pathname);
  } catch {
    // not a URL: fall through to the default name
  }
  return name || `${spec.name}.tar.gz`;
}

/** Stream the response to `partPath`, returning the md5 of what was written. */
async function fetchToFile(
  spec: DownloadSpec,
  partPath: string,
  options: DownloadOptions,
): Promise<string> {
  const doFetch = options.fetchImpl ?? fetch;
  let response: Response;
  try {
    response = await doFetch(spec.url, { redirect: 'follow' });
  } catch (err) {
    fail(offlineHint(spec, networkReason(err)));
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    const text = response.statusText ? ` ${response.statusText}` : '';
    fail(offlineHint(spec, `HTTP ${response.status}${text}`));
  }
  if (!response.body) fail(offlineHint(spec, 'the response has no body'));

  // Content-Length counts encoded bytes; with a Content-Encoding, fetch hands us decoded ones.
  const lengthHeader = response.headers.get('content-length');
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const parsed = lengthHeader === null ? NaN : Number(lengthHeader);
  const total = !encoded && Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : null;

  const hash = createHash('md5');
  const reader = response.body.getReader();
  const out = await open(partPath, 'w');
  let received = 0;
  try {
    options.onProgress?.(0, total);
    while (true) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        fail(
          offlineHint(spec, `the connection broke after ${received} bytes: ${networkReason(err)}`),
        );
      }
      if (chunk.done) break;
      const bytes = chunk.value;
      if (bytes.byteLength === 0) continue;
      hash.update(bytes);
      await out.write(bytes);
      received += bytes.byteLength;
      options.onProgress?.(received, total);
    }
  } finally {
    await out.close();
    reader.releaseLock();
  }
  return hash.digest('hex');
}

/**
 * Make sure `destRoot/<spec.archiveDir>` holds the official files, downloading and extracting
 * the archive when any is missing. Returns that folder.
 */
export async function downloadDataset(
  spec: DownloadSpec,
  destRoot: string,
  options: DownloadOptions = {},
): Promise<string> {
  const finalDir = join(destRoot, spec.archiveDir);
  if ((await firstMissing(finalDir, spec.files)) === undefined) return finalDir;

  await mkdir(destRoot, { recursive: true });
  const partPath = join(destRoot, `${archiveName(spec)}.part`);
  let tmpDir: string | undefined;
  try {
    const got = await fetchToFile(spec, partPath, options);
    const expected = spec.md5.toLowerCase();
    if (got !== expected) {
      fail(
        `${spec.url}: checksum mismatch: md5 ${got}, expected ${expected}; ` +
          `the download is corrupt or not the official file`,
      );
    }

    tmpDir = await mkdtemp(join(destRoot, `.${spec.archiveDir}.tmp-`));
    try {
      await (await import('tar')).x({ file: partPath, cwd: tmpDir, gzip: true, strict: true });
    } catch (err) {
      fail(
        `${spec.url}: could not extract the archive (${err instanceof Error ? err.message : String(err)}); ` +
          `the download is corrupt or not the official file`,
      );
    }
    const extracted = join(tmpDir, spec.archiveDir);
    const missing = await firstMissing(extracted, spec.files);
    if (missing !== undefined) {
      fail(
        `${spec.url}: the archive has no ${spec.archiveDir}/${missing}; ` +
          `it is not the official ${spec.name} archive`,
      );
    }

    // An incomplete earlier copy is replaced only once the complete folder is in place.
    await replaceDir(extracted, finalDir);
  } finally {
    await rm(partPath, { force: true });
    if (tmpDir !== undefined) await rm(tmpDir, { recursive: true, force: true });
  }
  return finalDir;
}
