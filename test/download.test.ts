// downloadDataset against a local HTTP server on 127.0.0.1 only: never a real network.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { c as createTar } from 'tar';
import { DOWNLOADS, downloadDataset, type DownloadSpec } from '../src/data/download.js';

const REAL_DIR = join(process.cwd(), '..', 'shared', 'data', 'cifar-10-batches-bin');
const ARCHIVE_DIR = 'cifar-10-batches-bin';

let work: string;
let goodArchive: Buffer;
let partialArchive: Buffer;
let server: http.Server;
let base: string;
const hits = new Map<string, number>();

function md5(buf: Buffer): string {
  return createHash('md5').update(buf).digest('hex');
}

async function buildArchive(name: string, withMeta: boolean): Promise<Buffer> {
  const root = join(work, `src-${name}`);
  const dir = join(root, ARCHIVE_DIR);
  await mkdir(dir, { recursive: true });
  await copyFile(join(REAL_DIR, 'test_batch_exact_first1000.bin'), join(dir, 'test_batch.bin'));
  if (withMeta) await copyFile(join(REAL_DIR, 'batches.meta.txt'), join(dir, 'batches.meta.txt'));
  const file = join(work, `${name}.tar.gz`);
  await createTar({ gzip: true, file, cwd: root, portable: true }, [ARCHIVE_DIR]);
  return readFile(file);
}

function spec(path: string, archive: Buffer | null): DownloadSpec {
  return {
    ...DOWNLOADS.cifar10,
    url: `${base}${path}`,
    md5: archive ? md5(archive) : DOWNLOADS.cifar10.md5,
    files: ['test_batch.bin', 'batches.meta.txt'],
  };
}

async function freshDest(): Promise<string> {
  return mkdtemp(join(work, 'dest-'));
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'onepixel-download-'));
  goodArchive = await buildArchive('good', true);
  partialArchive = await buildArchive('partial', false);
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    hits.set(url, (hits.get(url) ?? 0) + 1);
    const body = url.startsWith('/good/')
      ? goodArchive
      : url.startsWith('/partial/')
        ? partialArchive
        : null;
    if (body === null) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/gzip',
      'content-length': String(body.length),
    });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(work, { recursive: true, force: true });
});

describe('DOWNLOADS', () => {
  test('lists the official URLs, md5 values, folders and files', () => {
    assert.equal(DOWNLOADS.cifar10.name, 'cifar10');
    assert.equal(DOWNLOADS.cifar10.url, 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz');
    assert.equal(DOWNLOADS.cifar10.md5, 'c32a1d4ab5d03f1284b67883e8d87530');
    assert.equal(DOWNLOADS.cifar10.archiveDir, 'cifar-10-batches-bin');
    assert.deepEqual([...DOWNLOADS.cifar10.files].sort(), [
      'batches.meta.txt',
      'data_batch_1.bin',
      'data_batch_2.bin',
      'data_batch_3.bin',
      'data_batch_4.bin',
      'data_batch_5.bin',
      'test_batch.bin',
    ]);
    assert.equal(DOWNLOADS.cifar100.name, 'cifar100');
    assert.equal(
      DOWNLOADS.cifar100.url,
      'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    );
    assert.equal(DOWNLOADS.cifar100.md5, '03b5dce01913d631647c71ecec9e9cb8');
    assert.equal(DOWNLOADS.cifar100.archiveDir, 'cifar-100-binary');
    assert.deepEqual([...DOWNLOADS.cifar100.files].sort(), [
      'coarse_label_names.txt',
      'fine_label_names.txt',
      'test.bin',
      'train.bin',
    ]);
  });
});

describe('downloadDataset', () => {
  test('downloads, verifies and extracts byte-identical files; a second call is offline', async () => {
    const dest = await freshDest();
    const s = spec('/good/cifar-10-binary.tar.gz', goodArchive);
    const calls: Array<[number, number | null]> = [];
    const dir = await downloadDataset(s, dest, {
      onProgress: (received, total) => calls.push([received, total]),
    });
    assert.equal(dir, join(dest, ARCHIVE_DIR));
    assert.deepEqual(
      await readFile(join(dir, 'test_batch.bin')),
      await readFile(join(REAL_DIR, 'test_batch_exact_first1000.bin')),
    );
    assert.deepEqual(
      await readFile(join(dir, 'batches.meta.txt')),
      await readFile(join(REAL_DIR, 'batches.meta.txt')),
    );
    // Only the final folder is left: no .part, no temporary folder.
    assert.deepEqual(await readdir(dest), [ARCHIVE_DIR]);

    assert.ok(calls.length >= 2, `progress called ${calls.length} times`);
    for (const [, total] of calls) assert.equal(total, goodArchive.length);
    for (let i = 1; i < calls.length; i++) assert.ok(calls[i][0] > calls[i - 1][0]);
    assert.equal(calls[calls.length - 1][0], goodArchive.length);
    assert.equal(hits.get('/good/cifar-10-binary.tar.gz'), 1);

    const again = await downloadDataset(s, dest, {
      onProgress: () => assert.fail('no download expected'),
    });
    assert.equal(again, dir);
    assert.equal(hits.get('/good/cifar-10-binary.tar.gz'), 1);
  });

  test('replaces an incomplete earlier copy', async () => {
    const dest = await freshDest();
    await mkdir(join(dest, ARCHIVE_DIR));
    await writeFile(join(dest, ARCHIVE_DIR, 'test_batch.bin'), 'truncated');
    const dir = await downloadDataset(spec('/good/replace.tar.gz', goodArchive), dest);
    assert.deepEqual(
      await readFile(join(dir, 'test_batch.bin')),
      await readFile(join(REAL_DIR, 'test_batch_exact_first1000.bin')),
    );
    assert.deepEqual(await readdir(dest), [ARCHIVE_DIR]);
  });

  test('a wrong md5 rejects and leaves no .part and no archive folder', async () => {
    const dest = await freshDest();
    const s = { ...spec('/good/bad-md5.tar.gz', goodArchive), md5: '0'.repeat(32) };
    await assert.rejects(downloadDataset(s, dest), (err: Error) => {
      assert.equal(err.name, 'OnepixelError');
      assert.match(err.message, /checksum mismatch/);
      assert.match(err.message, new RegExp(`md5 ${md5(goodArchive)}, expected 0{32}`));
      return true;
    });
    assert.deepEqual(await readdir(dest), []);
  });

  test('HTTP 404 rejects and points to --data-dir', async () => {
    const dest = await freshDest();
    await assert.rejects(downloadDataset(spec('/nope.tar.gz', null), dest), (err: Error) => {
      assert.equal(err.name, 'OnepixelError');
      assert.match(err.message, /could not download cifar10 from http:\/\/127\.0\.0\.1/);
      assert.match(err.message, /404/);
      assert.match(err.message, /--data-dir/);
      return true;
    });
    assert.deepEqual(await readdir(dest), []);
  });

  test('a refused connection rejects and points to --data-dir', async () => {
    const closed = http.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const dest = await freshDest();
    const s = { ...spec('/x', null), url: `http://127.0.0.1:${port}/cifar-10-binary.tar.gz` };
    await assert.rejects(downloadDataset(s, dest), (err: Error) => {
      assert.equal(err.name, 'OnepixelError');
      assert.match(err.message, /could not download cifar10/);
      assert.match(err.message, /ECONNREFUSED/);
      assert.match(err.message, /--data-dir/);
      return true;
    });
    assert.deepEqual(await readdir(dest), []);
  });

  test('an archive missing an expected file rejects naming it; nothing under the final name', async () => {
    const dest = await freshDest();
    const s = spec('/partial/cifar-10-binary.tar.gz', partialArchive);
    await assert.rejects(downloadDataset(s, dest), (err: Error) => {
      assert.equal(err.name, 'OnepixelError');
      assert.match(err.message, /batches\.meta\.txt/);
      return true;
    });
    assert.deepEqual(await readdir(dest), []);
  });
});
