/**
 * Fuzzing every reader with seeded mutations of small valid files (test/fuzz-helpers.ts): each
 * mutated input must either read (a harmless change, e.g. a pixel byte) into a dataset that keeps
 * the readers' promises, or be refused with a one-line OnepixelError naming the mutated file, in
 * under 2 s; never another exception, never a hang. A sample of the refused cases also goes
 * through the real CLI: exit 1, one `onepixel: error:` line, no stack, nothing written. The known
 * failures of issue 10 are checked one by one first.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { OnepixelError } from '../src/errors.js';
import {
  type Dataset,
  type DatasetSplits,
  type ImageStream,
  isDataset,
} from '../src/data/dataset.js';
import { readCifar10, readCifar100 } from '../src/data/cifar.js';
import { openFolder } from '../src/data/folder.js';
import { readIdxFolder } from '../src/data/idx.js';
import { readNpyFolder } from '../src/data/npy.js';
import { readManifest } from '../src/manifest.js';
import { readNoiseNpy } from '../src/noise/npy.js';
import { checkNoise } from '../src/noise/bounds.js';
import {
  type Fixture,
  JSON_VALUES,
  Rand,
  cifarFixture,
  folderFixture,
  idxFixture,
  int64,
  jsonPaths,
  mutate,
  npy,
  npyFixture,
  plainIdx,
  pngDeclaring,
  validManifest,
  writeFixture,
} from './fuzz-helpers.js';
import { runCli, tempDirs } from './helpers.js';

const newDir = tempDirs('fuzz');
const CASE_MS = 2000;

/** The promises every reader keeps about what it returns. */
async function checkSplits(s: DatasetSplits<Dataset | ImageStream>): Promise<void> {
  for (const ds of [s.train, s.test]) {
    if (!ds) continue;
    const size = ds.height * ds.width * ds.channels;
    assert.ok(size > 0 && (ds.channels === 1 || ds.channels === 3));
    if (isDataset(ds)) {
      assert.equal(ds.images.length, ds.labels.length * size);
      for (const l of ds.labels) assert.ok(l >= 0 && l < ds.classNames.length, `label ${l}`);
    } else {
      let n = 0;
      for await (const rec of ds.records()) {
        assert.equal(rec.image.length, size);
        assert.ok(rec.label >= 0 && rec.label < ds.classNames.length);
        n++;
      }
      assert.equal(n, ds.count);
    }
  }
}

/** Runs one read: 'ok', or 'refused' after checking the error; anything else fails the test. */
async function outcome(read: () => Promise<unknown>, file: string, how: string) {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${CASE_MS} ms`)), CASE_MS);
  });
  try {
    await Promise.race([read(), hang]);
    return 'ok';
  } catch (e) {
    const what = `${path.basename(file)} ${how}`;
    assert.ok(e instanceof OnepixelError, `${what}: ${(e as Error).stack ?? String(e)}`);
    assert.ok(!e.message.includes('\n'), `${what}: message of several lines: ${e.message}`);
    assert.ok(e.message.includes(file), `${what}: message does not name ${file}: ${e.message}`);
    return 'refused';
  } finally {
    clearTimeout(timer);
    const ms = performance.now() - start;
    assert.ok(ms < CASE_MS, `${path.basename(file)} ${how}: ${ms.toFixed(0)} ms`);
  }
}

interface Case {
  name: string;
  bytes: Buffer;
  how: string;
}

interface Reader {
  title: string;
  fixture: () => Fixture | Promise<Fixture>;
  read: (dir: string) => Promise<unknown>;
  cases: number;
  /** Reader-specific mutations, tried on about half the cases. */
  special?: (r: Rand, f: Fixture) => Case | null;
  /** The CLI arguments that read `dir` (output in `out`), and whether to run them. */
  cli: (dir: string, out: string) => string[];
  cliSample?: boolean;
}

const readSplits = (p: Promise<DatasetSplits<Dataset | ImageStream>>) => p.then(checkSplits);

/** .npy header texts that break one field at a time. */
function npyHeaderCase(r: Rand, f: Fixture): Case {
  const name = r.pick([...f.files.keys()].filter((n) => n.endsWith('.npy')));
  const isX = name.startsWith('x');
  const n = name.includes('train') ? 6 : 2;
  const old = f.files.get(name) as Buffer;
  const data = old.subarray(old.indexOf(0x0a) + 1);
  const dims = isX ? [n, 4, 4, 3] : [n];
  const descr = r.pick(['|u1', '<u1', '<i8', '<u8', '>i8', '<f4', '|O', '<U3', '|b1', "x'"]);
  const shape = r.pick([
    dims.join(', '),
    dims.map((d, i) => (i === r.int(dims.length) ? -d : d)).join(', '),
    [2 ** 40, ...dims.slice(1)].join(', '),
    [...dims, 0].join(', '),
    '9007199254740993, 1',
    `${dims.join(', ')}, 1.5`,
    'n, 4',
    '',
  ]);
  const order = r.pick(['False', 'True', 'None', '0']);
  const header = r.pick([
    `{'descr': '${descr}', 'fortran_order': ${order}, 'shape': (${shape}), }`,
    `{'descr': '${isX ? '|u1' : '<i8'}', 'fortran_order': False, 'shape': (${shape},), }`,
    `{'shape': (${dims.join(', ')},), 'descr': '${descr}', 'fortran_order': False}`,
    `{'descr': '${descr}', 'fortran_order': False}`,
    `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape}), 'extra': 1}`,
    `['descr', 'shape']`,
  ]);
  return { name, bytes: npy('', [], data, header), how: `header ${header}` };
}

/** Labels that do not fit: huge, 2^32 + k (which wrapped before), negative, as int64/uint64. */
function npyLabelCase(r: Rand): Case {
  const name = r.pick(['y_train.npy', 'y_test.npy']);
  const n = name === 'y_train.npy' ? 6 : 2;
  const values: Array<number | bigint> = Array.from({ length: n }, (_, i) => i % 3);
  const v = r.pick([2_000_000_000n, 2n ** 32n + 1n, 2n ** 63n - 1n, -1n, 3n, 6n, 100_000n]);
  values[r.int(n)] = v;
  const descr = r.pick(['<i8', '<u8']);
  const data =
    descr === '<u8'
      ? new Uint8Array(BigUint64Array.from(values.map((x) => BigInt.asUintN(64, BigInt(x)))).buffer)
      : int64(values);
  return { name, bytes: npy(descr, [n], data), how: `label ${v} (${descr})` };
}

const READERS: Reader[] = [
  {
    title: 'CIFAR-10 binary',
    fixture: () => cifarFixture(1),
    read: (dir) => readSplits(readCifar10(dir)),
    cases: 150,
    cli: (dir, out) => ['protect', '--dataset', 'cifar10', '--data-dir', dir, '--out', out],
    cliSample: true,
  },
  {
    title: 'CIFAR-100 binary',
    fixture: () => cifarFixture(2),
    read: (dir) => readSplits(readCifar100(dir)),
    cases: 150,
    cli: (dir, out) => ['protect', '--dataset', 'cifar100', '--data-dir', dir, '--out', out],
  },
  {
    title: 'IDX',
    fixture: () => idxFixture(false),
    read: (dir) => readSplits(readIdxFolder(dir)),
    cases: 150,
    cli: (dir, out) => ['protect', '--dataset', 'fashion-mnist', '--data-dir', dir, '--out', out],
  },
  {
    title: 'IDX gzipped',
    fixture: () => idxFixture(true),
    read: (dir) => readSplits(readIdxFolder(dir)),
    cases: 200,
    // Mutate the plain bytes, then gzip: headers that disagree with what the stream inflates to.
    special: (r) => {
      const plain = plainIdx();
      const name = r.pick([...plain.files.keys()]);
      const m = mutate(r, plain.files.get(name) as Buffer, 16);
      return { name: `${name}.gz`, bytes: gzipSync(m.bytes), how: `gzip of plain ${m.how}` };
    },
    cli: (dir, out) => ['protect', '--dataset', 'mnist', '--data-dir', dir, '--out', out],
    cliSample: true,
  },
  {
    title: 'NumPy',
    fixture: npyFixture,
    read: (dir) => readSplits(readNpyFolder(dir)),
    cases: 250,
    special: (r, f) => (r.next() < 0.6 ? npyHeaderCase(r, f) : npyLabelCase(r)),
    cli: (dir, out) => ['protect', '--dataset', 'npy', '--data-dir', dir, '--out', out],
    cliSample: true,
  },
  {
    title: 'class folders',
    fixture: folderFixture,
    read: (dir) => openFolder(dir).then(checkSplits),
    cases: 100,
    special: (r) => {
      const name = r.pick(['train/a/1.png', 'test/b/0.png', 'train/b/2.jpg']);
      const [w, h] = r.pick([
        [100_000, 100_000],
        [6, 100_000],
        [65_535, 1],
        [7, 6],
        [12, 3],
      ]);
      return { name, bytes: pngDeclaring(w, h), how: `PNG header of ${w}×${h}` };
    },
    cli: (dir, out) => ['protect', '--dataset', 'folder', '--data-dir', dir, '--out', out],
    cliSample: true,
  },
];

/**
 * Runs a reader's cases, each in a fresh copy of the fixture (files are never rewritten under a
 * reader: libvips may still map a file of an abandoned decode); returns the refused cases (for the
 * CLI sample) and the count of harmless ones.
 */
async function fuzz(reader: Reader, seed: number) {
  const fixture = await reader.fixture();
  const names = [...fixture.files.keys()];
  const r = new Rand(seed);
  const refused: Case[] = [];
  let ok = 0;
  for (let i = 0; i < reader.cases; i++) {
    let c = reader.special && r.next() < 0.5 ? reader.special(r, fixture) : null;
    if (!c) {
      const name = r.pick(names);
      const m = mutate(r, fixture.files.get(name) as Buffer, fixture.header(name));
      c = { name, bytes: m.bytes, how: m.how };
    }
    const dir = await newDir();
    await writeFixture(dir, fixture);
    const file = path.join(dir, c.name);
    await writeFile(file, c.bytes);
    const result = await outcome(() => reader.read(dir), file, `(case ${i}: ${c.how})`);
    if (result === 'ok') ok++;
    else refused.push(c);
  }
  return { fixture, refused, ok };
}

/** CLI runs gathered from the tests below, run together at the end (three at a time). */
const cliRuns: Array<{ what: string; run: () => Promise<void> }> = [];

/** The CLI on a mutated copy: exit 1, one error line, no stack trace, no output or temp folder. */
async function cliRefuses(args: (dir: string, out: string) => string[], fixture: Fixture, c: Case) {
  const root = await newDir();
  const dir = path.join(root, 'data');
  await writeFixture(dir, fixture);
  await writeFile(path.join(dir, c.name), c.bytes);
  const res = await runCli(args(dir, path.join(root, 'out')), 120_000);
  const what = `${c.name} ${c.how}`;
  assert.equal(res.code, 1, `${what}: exit ${res.code}\n${res.stderr}`);
  const lines = res.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: stderr\n${res.stderr}`);
  assert.match(lines[0], /^onepixel: error: /, what);
  assert.ok(lines[0].includes(path.join(dir, c.name)), `${what}: ${lines[0]}`);
  assert.deepEqual(await readdir(root), ['data'], `${what}: something was written`);
}

describe('readers under seeded mutations', () => {
  READERS.forEach((reader, k) => {
    it(`${reader.title}: ${reader.cases} mutations read or are refused naming the file`, async () => {
      const { fixture, refused, ok } = await fuzz(reader, 1000 + k);
      // Both outcomes occur: the fuzzing reaches the checks and also leaves harmless changes.
      assert.ok(refused.length > reader.cases / 4, `${refused.length} refused`);
      assert.ok(ok > 0, 'no mutation was harmless');
      // The CLI on one refused case of each family (each run costs a Node start-up).
      const c = new Rand(k).pick(refused);
      if (reader.cliSample)
        cliRuns.push({ what: reader.title, run: () => cliRefuses(reader.cli, fixture, c) });
    });
  });
});

describe('the known failures of issue 10', () => {
  it('a huge label without classes.txt, a negative dimension, int64 labels ≥ 2^32', async () => {
    const dir = await newDir();
    const f = npyFixture();
    f.files.delete('classes.txt');
    await writeFixture(dir, f);
    const y = path.join(dir, 'y_train.npy');
    await writeFile(y, npy('<i8', [6], int64([0, 1, 2_000_000_000, 0, 1, 2])));
    await assert.rejects(
      readNpyFolder(dir),
      /y_train\.npy record 2: label 2000000000, expected 0\.\.5 \(without classes\.txt/,
    );
    // 2^32 + 1 used to wrap to label 1.
    await writeFile(y, npy('<i8', [6], int64([0, 1, 2n ** 32n + 1n, 0, 1, 2])));
    await assert.rejects(readNpyFolder(dir), /y_train\.npy record 2: label 4294967297/);
    await writeFile(y, f.files.get('y_train.npy') as Buffer);
    const x = path.join(dir, 'x_test.npy');
    const data = (f.files.get('x_test.npy') as Buffer).subarray(128);
    await writeFile(x, npy('|u1', [-2, 4, 4, 3], data));
    await assert.rejects(readNpyFolder(dir), /x_test\.npy: shape \(-2, 4, 4, 3\): dimensions must/);
    // The reader still reads the fixture itself.
    await writeFile(x, f.files.get('x_test.npy') as Buffer);
    assert.deepEqual((await readNpyFolder(dir)).train.classNames, ['0', '1', '2']);
  });

  it('a gzipped IDX file that inflates past its header (a 20 KB bomb of 20 MB)', async () => {
    const dir = await newDir();
    await writeFixture(dir, idxFixture(true));
    const plain = plainIdx().files.get('train-images-idx3-ubyte') as Buffer;
    const bomb = gzipSync(Buffer.concat([plain, Buffer.alloc(20 << 20)]));
    const file = path.join(dir, 'train-images-idx3-ubyte.gz');
    await writeFile(file, bomb);
    const start = performance.now();
    await assert.rejects(
      readIdxFolder(dir),
      /train-images-idx3-ubyte\.gz: gzip data inflates past the 112 bytes its header implies/,
    );
    assert.ok(performance.now() - start < 500, 'stopped at the header-implied size');
    // A header claiming 2^32-1 images of 28×28 in a few bytes of gzip: refused before inflating.
    const huge = Buffer.from(plain.subarray(0, 16));
    huge.writeUInt32BE(0xffffffff, 4);
    await writeFile(file, gzipSync(huge));
    await assert.rejects(readIdxFolder(dir), /header implies \d+ bytes, more than \d+ gzip bytes/);
    // Short of the header's size.
    await writeFile(file, gzipSync(plain.subarray(0, plain.length - 5)));
    await assert.rejects(readIdxFolder(dir), /inflates to 107 bytes, short of the 112/);
  });

  it('a class-folder PNG declaring 100000×100000 is refused before decoding', async () => {
    const dir = await newDir();
    await writeFixture(dir, await folderFixture());
    const later = path.join(dir, 'train/b/1.png');
    await writeFile(later, pngDeclaring(100_000, 100_000));
    const ds = await openFolder(dir);
    await assert.rejects(
      checkSplits(ds),
      new RegExp(`${later}: image is 100000×100000, but the dataset's images are 6×6`),
    );
    await writeFile(path.join(dir, 'train/a/0.png'), pngDeclaring(100_000, 100_000));
    await assert.rejects(openFolder(dir), /0\.png: image is 100000×100000, larger than the/);
  });
});

describe('manifest.json under mutations', () => {
  it('300 field and text mutations are read or refused naming the file and field', async () => {
    const dir = await newDir();
    const file = path.join(dir, 'manifest.json');
    const valid = validManifest();
    await writeFile(file, JSON.stringify(valid));
    await readManifest(dir);
    const paths = jsonPaths(valid).slice(1);
    const r = new Rand(7);
    const refused: Case[] = [];
    for (let i = 0; i < 300; i++) {
      let text: string;
      let how: string;
      if (r.next() < 0.8) {
        const m = validManifest();
        const at = r.pick(paths);
        let parent = m as Record<string | number, unknown>;
        for (const key of at.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
        const last = at[at.length - 1];
        if (r.next() < 0.2) delete parent[last];
        else parent[last] = r.pick(JSON_VALUES);
        text = JSON.stringify(m);
        how = `${at.join('.')} = ${JSON.stringify(parent[last])}`;
      } else {
        const mut = mutate(r, Buffer.from(JSON.stringify(valid)), 200);
        text = mut.bytes.toString('latin1');
        how = mut.how;
      }
      await writeFile(file, text);
      const result = await outcome(() => readManifest(dir), file, `(case ${i}: ${how})`);
      if (result === 'refused')
        refused.push({ name: 'manifest.json', bytes: Buffer.from(text), how });
    }
    for (const bad of ['null', '[]', '7', '{}'])
      await writeFile(file, bad).then(() => outcome(() => readManifest(dir), file, bad));
    const m = validManifest();
    ((m.classes as Array<{ pixels: Array<{ row: number }> }>)[1].pixels[0].row as number) = 4;
    await writeFile(file, JSON.stringify(m));
    await assert.rejects(
      readManifest(dir),
      new RegExp(
        `^OnepixelError: ${file}: classes\\[1\\]\\.pixels\\[0\\]\\.row: expected an integer in 0\\.\\.3, got 4$`,
      ),
    );
    assert.ok(refused.length > 150, `${refused.length} refused`);
    // inspect (like train and audit) reads manifests through the same validator.
    const c = r.pick(refused);
    const fixture = { files: new Map([['manifest.json', c.bytes]]), header: () => 0 };
    cliRuns.push({
      what: `inspect ${c.how}`,
      run: () => cliRefuses((d) => ['inspect', d], fixture, c),
    });
  });
});

describe('noise .npy under mutations', () => {
  it('200 mutations are read or refused naming the file', async () => {
    const dir = await newDir();
    const file = path.join(dir, 'noise.npy');
    const shape = [3, 4, 4, 3];
    const n = 3 * 48;
    const r = new Rand(9);
    const noise = Float32Array.from({ length: n }, () => (r.next() * 2 - 1) * 0.03);
    const valid = npy('<f4', shape, new Uint8Array(noise.buffer));
    const clean = new Uint8Array(n).fill(128);
    const read = async () => {
      const got = await readNoiseNpy(file, shape);
      checkNoise(clean, got, 8 / 255, file, 48);
    };
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      let c: Case;
      if (r.next() < 0.3) {
        const bad = Float32Array.from(noise);
        bad[r.int(n)] = r.pick([NaN, Infinity, -1, 0.5]);
        const dims = r.pick([shape, [3, 4, 4, 1], [4, 4, 4, 3], [3, -4, 4, 3], [2 ** 40, 4, 4, 3]]);
        const descr = r.pick(['<f4', '<f8', '|u1']);
        c = {
          name: 'noise.npy',
          bytes: npy(descr, dims, new Uint8Array(bad.buffer)),
          how: `${descr} ${dims}`,
        };
      } else {
        const m = mutate(r, valid, 128);
        c = { name: 'noise.npy', bytes: m.bytes, how: m.how };
      }
      await writeFile(file, c.bytes);
      if ((await outcome(read, file, `(case ${i}: ${c.how})`)) === 'refused') refused++;
    }
    assert.ok(refused > 100, `${refused} refused`);
    // Through the CLI: random noise from a noise file of the wrong shape (the data is valid).
    const bad = {
      name: 'noise.npy',
      bytes: npy('<f4', [6, 4, 4, 1], new Uint8Array(384)),
      how: '',
    };
    const fixture = npyFixture();
    fixture.files.set('noise.npy', bad.bytes);
    const args = (d: string, out: string) => [
      ...['protect', '--method', 'random-noise', '--dataset', 'npy', '--data-dir', d],
      ...['--noise', path.join(d, 'noise.npy'), '--out', out],
    ];
    cliRuns.push({ what: 'noise', run: () => cliRefuses(args, fixture, bad) });
  });
});

describe('the CLI refuses a sample of the refused inputs', () => {
  it('exit 1, one error line naming the file, no stack trace, nothing written', async () => {
    assert.ok(cliRuns.length >= 6, `${cliRuns.length} CLI cases`);
    // Three at a time: each run is mostly Node's start-up.
    const queue = [...cliRuns];
    const worker = async () => {
      for (let job = queue.shift(); job; job = queue.shift()) await job.run();
    };
    await Promise.all([worker(), worker(), worker()]);
  });
});
