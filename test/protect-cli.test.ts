/**
 * The `onepixel` command end to end, run as a child process (CI=1, so no progress bars): a full
 * CIFAR-10 protect run checked byte by byte against the real files, `inspect`, small real-data
 * copies for the other options, refused inputs (nothing written at --out), interruption (the
 * temporary folder removed), --help/--version and the offline --download path.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import {
  CIFAR_DIR,
  CIFAR_RECORD as RECORD,
  CIFAR_TRAIN_FILES as TRAIN_FILES,
  CLI,
  childEnv,
  cifarRecordToHwc as recordToHwc,
  FASHION_DIR,
  NO_FASHION,
  type CliResult as Result,
  runCli,
  sha256,
} from './helpers.js';

const ROOT = process.cwd();
const HAVE_CIFAR = existsSync(path.join(CIFAR_DIR, 'data_batch_5.bin'));
const NO_CIFAR = HAVE_CIFAR ? false : `no CIFAR-10 at ${CIFAR_DIR}`;

const PLANE = 1024;
const CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];
const VERSION = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

interface Pixel {
  row: number;
  col: number;
  value: number[];
  overwritten?: boolean;
}

interface ManifestJson {
  method: string;
  objective: string;
  pixelsPerClass: number;
  height: number;
  width: number;
  channels: number;
  classes: Array<{ label: number; name: string; count: number; pixels: Pixel[] }>;
  source: {
    dataset: string;
    dataDir: string;
    files: Array<{ path: string; bytes: number; sha256: string }>;
  };
  output: { format: string; train: number; test: number | null };
  version: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function describeRun(r: Result): string {
  return `exit ${r.code} signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** Entries of `parent` that are temporary (or moved-aside) siblings of output folder `name`. */
async function tmpSiblings(parent: string, name: string): Promise<string[]> {
  const entries = await readdir(parent);
  return entries.filter((e) => e.startsWith(`.${name}.tmp-`) || e.startsWith(`.${name}.old-`));
}

/** A refused run: non-zero exit, no output folder, no temporary sibling. */
async function assertRefused(r: Result, out: string): Promise<void> {
  assert.notEqual(r.code, 0, describeRun(r));
  assert.equal(r.code, 1, describeRun(r));
  assert.ok(!existsSync(out), `${out} exists after a failed run`);
  assert.deepEqual(await tmpSiblings(path.dirname(out), path.basename(out)), []);
}

function parseNpy(b: Buffer): { shape: number[]; descr: string; data: Buffer } {
  assert.equal(b.toString('latin1', 0, 6), '\x93NUMPY');
  const major = b[6];
  const len = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + len);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? '';
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  return { shape, descr, data: b.subarray(start + len) };
}

let work: string;
/** data_batch_1..5 with 40 real records each, 20 real test records, batches.meta.txt. */
let small: string;
let smallTrain: Buffer; // the 200 training records, in file order
let smallTest: Buffer;

/** A copy of the small dataset in a fresh folder; `edit` may change its files. */
async function smallCopy(
  name: string,
  edit?: (files: Map<string, Buffer>) => void,
): Promise<string> {
  const dir = path.join(work, 'inputs', name);
  await mkdir(dir, { recursive: true });
  const files = new Map<string, Buffer>();
  for (const f of [...TRAIN_FILES, 'test_batch.bin', 'batches.meta.txt'])
    files.set(f, Buffer.from(await readFile(path.join(small, f))));
  edit?.(files);
  for (const [f, bytes] of files) await writeFile(path.join(dir, f), bytes);
  return dir;
}

/** A fresh empty parent folder for an output that must not be created. */
async function outIn(name: string): Promise<string> {
  const parent = path.join(work, 'outs', name);
  await mkdir(parent, { recursive: true });
  return path.join(parent, 'out');
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'onepixel-cli-test-'));
  if (!HAVE_CIFAR) return;
  small = path.join(work, 'small-c10');
  await mkdir(small);
  const batch1 = await readFile(path.join(CIFAR_DIR, 'data_batch_1.bin'));
  smallTrain = batch1.subarray(0, 200 * RECORD);
  for (let b = 0; b < 5; b++)
    await writeFile(
      path.join(small, TRAIN_FILES[b]),
      smallTrain.subarray(b * 40 * RECORD, (b + 1) * 40 * RECORD),
    );
  smallTest = (await readFile(path.join(CIFAR_DIR, 'test_batch.bin'))).subarray(0, 20 * RECORD);
  await writeFile(path.join(small, 'test_batch.bin'), smallTest);
  await writeFile(
    path.join(small, 'batches.meta.txt'),
    await readFile(path.join(CIFAR_DIR, 'batches.meta.txt')),
  );
  // Every class must have at least two images for the search.
  const counts = new Array<number>(10).fill(0);
  for (let r = 0; r < 200; r++) counts[smallTrain[r * RECORD]]++;
  assert.ok(
    counts.every((n) => n >= 2),
    `small dataset class counts ${counts.join(',')}`,
  );
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('protect on the full CIFAR-10, then inspect', { skip: NO_CIFAR }, () => {
  let parent: string;
  let out: string;
  let run: Result;
  let manifest: ManifestJson;
  let inspectText: Result;
  let inspectJson: Result;

  before(async () => {
    parent = path.join(work, 'full');
    await mkdir(parent);
    out = path.join(parent, 'c10');
    run = await runCli(['protect', '--dataset', 'cifar10', '--data-dir', CIFAR_DIR, '--out', out]);
    if (run.code !== 0) return;
    manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    // Both reports at once: each reads all 100,000 images.
    [inspectText, inspectJson] = await Promise.all([
      runCli(['inspect', out]),
      runCli(['inspect', '--json', out]),
    ]);
  });

  it('exits 0 and writes the drop-in folder with a manifest, no temporary folder left', async () => {
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stdout, /protected 50000 training images/);
    const entries = (await readdir(out)).sort();
    assert.deepEqual(
      entries,
      [...TRAIN_FILES, 'batches.meta.txt', 'manifest.json', 'test_batch.bin'].sort(),
    );
    assert.deepEqual(await tmpSiblings(parent, 'c10'), []);
    assert.deepEqual(await readdir(parent), ['c10']);
  });

  it('writes a manifest that describes the run and pins the real source files', async () => {
    assert.equal(run.code, 0, describeRun(run));
    assert.equal(manifest.method, 'ops');
    assert.equal(manifest.objective, 'official');
    assert.equal(manifest.pixelsPerClass, 1);
    assert.deepEqual([manifest.height, manifest.width, manifest.channels], [32, 32, 3]);
    assert.equal(manifest.version, VERSION);
    assert.deepEqual(
      manifest.classes.map((c) => c.name),
      CLASSES,
    );
    manifest.classes.forEach((c, i) => {
      assert.equal(c.label, i);
      assert.equal(c.count, 5000);
      assert.equal(c.pixels.length, 1);
      const [p] = c.pixels;
      assert.ok(Number.isInteger(p.row) && p.row >= 0 && p.row < 32, `row ${p.row}`);
      assert.ok(Number.isInteger(p.col) && p.col >= 0 && p.col < 32, `col ${p.col}`);
      assert.equal(p.value.length, 3);
      for (const v of p.value) assert.ok(v === 0 || v === 255, `value ${v}`);
    });
    assert.equal(manifest.source.dataset, 'cifar10');
    assert.equal(manifest.source.files.length, 6);
    const expected = [...TRAIN_FILES, 'test_batch.bin'].sort();
    assert.deepEqual(manifest.source.files.map((f) => f.path).sort(), expected);
    for (const f of manifest.source.files) {
      const bytes = await readFile(path.join(CIFAR_DIR, f.path));
      assert.equal(f.sha256, sha256(bytes), `sha256 of ${f.path}`);
      assert.equal(f.bytes, bytes.length);
    }
    assert.deepEqual(manifest.output, { format: 'cifar', train: 50000, test: 10000 });
  });

  it('leaves test_batch.bin and the labels alone and changes only the chosen pixel', async () => {
    assert.equal(run.code, 0, describeRun(run));
    const testOut = await readFile(path.join(out, 'test_batch.bin'));
    assert.ok(testOut.equals(await readFile(path.join(CIFAR_DIR, 'test_batch.bin'))));

    const pos = manifest.classes.map((c) => c.pixels[0].row * 32 + c.pixels[0].col);
    const val = manifest.classes.map((c) => c.pixels[0].value);
    for (const name of TRAIN_FILES) {
      const src = await readFile(path.join(CIFAR_DIR, name));
      const dst = await readFile(path.join(out, name));
      assert.equal(dst.length, src.length, `${name} length`);
      const records = src.length / RECORD;
      let differing = 0;
      for (let i = 0; i < src.length; i++) {
        if (src[i] === dst[i]) continue;
        differing++;
        const r = Math.floor(i / RECORD);
        const inRec = i - r * RECORD;
        assert.notEqual(inRec, 0, `${name} record ${r}: label byte changed`);
        const label = src[r * RECORD];
        const p = (inRec - 1) % PLANE;
        const c = Math.floor((inRec - 1) / PLANE);
        assert.equal(p, pos[label], `${name} record ${r} (class ${label}): byte ${inRec} changed`);
        assert.equal(dst[i], val[label][c]);
      }
      for (let r = 0; r < records; r++) {
        const off = r * RECORD;
        const label = src[off];
        assert.equal(dst[off], label, `${name} record ${r}: label`);
        for (let c = 0; c < 3; c++)
          assert.equal(
            dst[off + 1 + c * PLANE + pos[label]],
            val[label][c],
            `${name} record ${r} channel ${c}: the chosen pixel is not set`,
          );
      }
      assert.ok(differing > 0, `${name}: nothing changed`);
      assert.ok(differing <= 3 * records, `${name}: ${differing} bytes changed`);
    }
  });

  it('inspect prints each class with L0 max 1 and nothing changed elsewhere', async () => {
    assert.equal(run.code, 0, describeRun(run));
    const r = inspectText;
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /sha256 verified/);
    const lines = r.stdout.split('\n');
    CLASSES.forEach((name, label) => {
      const line = lines.find((l) => new RegExp(`^\\s*${label} ${name}\\s`).test(l));
      assert.ok(line, `no line for class ${name} in:\n${r.stdout}`);
      const [images, , maxL0, psnr, elsewhere] = line.trim().split(/\s+/).slice(-5);
      assert.equal(images, '5000', line);
      assert.equal(maxL0, '1', line);
      assert.ok(Number(psnr) > 20, line);
      assert.equal(elsewhere, '0', line);
    });
  });

  it('inspect --json reports L0 max 1, no change elsewhere and a finite PSNR above 20 dB', async () => {
    assert.equal(run.code, 0, describeRun(run));
    const r = inspectJson;
    assert.equal(r.code, 0, describeRun(r));
    const report = JSON.parse(r.stdout) as {
      sourceNote: string | null;
      classes: Array<{
        name: string;
        images: number;
        maxL0: number;
        meanL0: number;
        psnr: number | string;
        changedOutsidePixels: number;
      }> | null;
    };
    assert.equal(report.sourceNote, null);
    assert.ok(report.classes);
    assert.deepEqual(
      report.classes.map((c) => c.name),
      CLASSES,
    );
    for (const c of report.classes) {
      assert.equal(c.images, 5000);
      assert.equal(c.maxL0, 1, c.name);
      // An image that already had the colour at the chosen pixel is unchanged: mean ≤ 1.
      assert.ok(c.meanL0 > 0.9 && c.meanL0 <= 1, `${c.name} meanL0 ${c.meanL0}`);
      assert.equal(c.changedOutsidePixels, 0, c.name);
      assert.equal(typeof c.psnr, 'number', `${c.name} psnr ${c.psnr}`);
      assert.ok(Number.isFinite(c.psnr) && (c.psnr as number) > 20, `${c.name} psnr ${c.psnr}`);
    }
  });
});

describe('protect options on a small CIFAR-10 copy', { skip: NO_CIFAR }, () => {
  it('--objective paper --pixels 2 --format npy writes NumPy files with 2 pixels per class', async () => {
    const out = path.join(work, 'npy-out');
    const r = await runCli([
      'protect',
      '--dataset',
      'cifar10',
      '--data-dir',
      small,
      '--out',
      out,
      '--objective',
      'paper',
      '--pixels',
      '2',
      '--format',
      'npy',
    ]);
    assert.equal(r.code, 0, describeRun(r));
    const m = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as ManifestJson;
    assert.equal(m.objective, 'paper');
    assert.equal(m.pixelsPerClass, 2);
    assert.deepEqual(m.output, { format: 'npy', train: 200, test: 20 });
    assert.equal(m.classes.length, 10);
    for (const c of m.classes) assert.equal(c.pixels.length, 2, c.name);
    for (const f of ['x_train.npy', 'y_train.npy', 'x_test.npy', 'y_test.npy', 'classes.txt'])
      assert.ok(existsSync(path.join(out, f)), `${f} missing`);
    assert.deepEqual(
      (await readFile(path.join(out, 'classes.txt'), 'utf8')).split('\n').filter(Boolean),
      CLASSES,
    );

    // x_train = the source images (HWC) with the class's pixels written in, in order.
    const x = parseNpy(await readFile(path.join(out, 'x_train.npy')));
    const y = parseNpy(await readFile(path.join(out, 'y_train.npy')));
    assert.equal(x.descr, '|u1');
    assert.deepEqual(x.shape, [200, 32, 32, 3]);
    assert.deepEqual(y.shape, [200]);
    for (let i = 0; i < 200; i++) {
      const rec = smallTrain.subarray(i * RECORD, (i + 1) * RECORD);
      const label = rec[0];
      assert.equal(Number(y.data.readBigInt64LE(i * 8)), label, `y_train[${i}]`);
      const want = recordToHwc(rec);
      for (const p of m.classes[label].pixels)
        for (let c = 0; c < 3; c++) want[(p.row * 32 + p.col) * 3 + c] = p.value[c];
      const got = x.data.subarray(i * 3072, (i + 1) * 3072);
      assert.ok(Buffer.from(want).equals(got), `x_train[${i}] differs from source + pixels`);
    }
    // The test split is unchanged.
    const xt = parseNpy(await readFile(path.join(out, 'x_test.npy')));
    assert.deepEqual(xt.shape, [20, 32, 32, 3]);
    for (let i = 0; i < 20; i++) {
      const want = recordToHwc(smallTest.subarray(i * RECORD, (i + 1) * RECORD));
      assert.ok(Buffer.from(want).equals(xt.data.subarray(i * 3072, (i + 1) * 3072)));
    }
  });
});

describe('refused CIFAR-10 inputs write nothing', { concurrency: true, skip: NO_CIFAR }, () => {
  const protectArgs = (dir: string, out: string, ...more: string[]) => [
    'protect',
    '--dataset',
    'cifar10',
    '--data-dir',
    dir,
    '--out',
    out,
    ...more,
  ];

  it('a truncated data_batch file: names the file', async () => {
    const dir = await smallCopy('truncated', (f) => {
      const b = f.get('data_batch_3.bin') as Buffer;
      f.set('data_batch_3.bin', b.subarray(0, b.length - 10));
    });
    const out = await outIn('truncated');
    const r = await runCli(protectArgs(dir, out));
    await assertRefused(r, out);
    assert.ok(r.stderr.includes(path.join(dir, 'data_batch_3.bin')), r.stderr);
    assert.match(r.stderr, /3073-byte records/);
    assert.match(r.stderr, /truncated/);
  });

  it('an over-long data_batch file: names the file and the extra bytes', async () => {
    const dir = await smallCopy('overlong', (f) => {
      const b = f.get('data_batch_2.bin') as Buffer;
      f.set('data_batch_2.bin', Buffer.concat([b, Buffer.alloc(7, 1)]));
    });
    const out = await outIn('overlong');
    const r = await runCli(protectArgs(dir, out));
    await assertRefused(r, out);
    assert.ok(r.stderr.includes(path.join(dir, 'data_batch_2.bin')), r.stderr);
    assert.match(r.stderr, /40 records and 7 bytes over/);
  });

  it('a label byte out of range: names the file, the record and the valid range', async () => {
    const dir = await smallCopy('label12', (f) => {
      (f.get('data_batch_4.bin') as Buffer)[17 * RECORD] = 12;
    });
    const out = await outIn('label12');
    const r = await runCli(protectArgs(dir, out));
    await assertRefused(r, out);
    assert.ok(r.stderr.includes(path.join(dir, 'data_batch_4.bin')), r.stderr);
    assert.match(r.stderr, /record 17\b/);
    assert.match(r.stderr, /label byte 12, expected 0\.\.9/);
  });

  it('empty data_batch files: says the file is empty', async () => {
    const dir = await smallCopy('empty', (f) => {
      for (const name of TRAIN_FILES) f.set(name, Buffer.alloc(0));
    });
    const out = await outIn('empty');
    const r = await runCli(protectArgs(dir, out));
    await assertRefused(r, out);
    assert.match(r.stderr, /data_batch_\d\.bin/);
    assert.match(r.stderr, /empty/);
  });

  /** Relabels the records of class 3 (cat) to class 5 (dog), keeping the first `keep`. */
  const relabelCats = (keep: number) => (f: Map<string, Buffer>) => {
    let kept = 0;
    for (const name of TRAIN_FILES) {
      const b = f.get(name) as Buffer;
      for (let off = 0; off < b.length; off += RECORD)
        if (b[off] === 3 && kept++ >= keep) b[off] = 5;
    }
  };

  it('a class with no images: names the class', async () => {
    const dir = await smallCopy('nocat', relabelCats(0));
    const out = await outIn('nocat');
    const r = await runCli(protectArgs(dir, out));
    await assertRefused(r, out);
    assert.match(r.stderr, /'cat'/);
    assert.match(r.stderr, /no images/);
  });

  it('a class with a single image: names the class', async () => {
    const dir = await smallCopy('onecat', relabelCats(1));
    const out = await outIn('onecat');
    const r = await runCli(protectArgs(dir, out));
    await assertRefused(r, out);
    assert.match(r.stderr, /'cat'/);
    assert.match(r.stderr, /single image/);
  });

  it("an existing --out is refused and kept; --force replaces only onepixel's own", async () => {
    const out = await outIn('exists');
    await mkdir(out);
    await writeFile(path.join(out, 'keep.txt'), 'precious\n');
    // A folder onepixel did not write is never replaced, even with --force.
    for (const force of [[], ['--force']]) {
      const r = await runCli(protectArgs(small, out, ...force));
      assert.equal(r.code, 1, describeRun(r));
      assert.match(r.stderr, /exists and was not written by onepixel \(no manifest.json\)/);
      assert.deepEqual(await readdir(out), ['keep.txt']);
      assert.equal(await readFile(path.join(out, 'keep.txt'), 'utf8'), 'precious\n');
      assert.deepEqual(await tmpSiblings(path.dirname(out), 'out'), []);
    }
    // A previous output: refused without --force, replaced with it.
    const own = await outIn('own');
    assert.equal((await runCli(protectArgs(small, own))).code, 0);
    await writeFile(path.join(own, 'stale.txt'), 'from before\n');
    const r = await runCli(protectArgs(small, own));
    assert.equal(r.code, 1, describeRun(r));
    assert.match(r.stderr, /already exists; pass --force/);
    assert.ok((await readdir(own)).includes('stale.txt'));
    const forced = await runCli(protectArgs(small, own, '--force'));
    assert.equal(forced.code, 0, describeRun(forced));
    assert.deepEqual(
      (await readdir(own)).sort(),
      [...TRAIN_FILES, 'batches.meta.txt', 'manifest.json', 'test_batch.bin'].sort(),
    );
    assert.deepEqual(await readdir(path.dirname(own)), ['out']);
    const m = JSON.parse(await readFile(path.join(own, 'manifest.json'), 'utf8')) as ManifestJson;
    assert.equal(m.output.train, 200);
  });

  for (const bad of ['0', '-1', 'abc', '1025', '2.5']) {
    it(`--pixels ${bad} is refused with a message about --pixels`, async () => {
      const out = await outIn(`pixels${bad}`);
      const r = await runCli(protectArgs(small, out, '--pixels', bad));
      await assertRefused(r, out);
      assert.match(r.stderr, /--pixels/);
      assert.ok(r.stderr.includes(bad), r.stderr);
    });
  }

  it('--pixels 1024 (every pixel) is accepted for 32×32 images', async () => {
    const out = path.join(work, 'pixels1024');
    const r = await runCli(protectArgs(small, out, '--pixels', '1024', '--format', 'npy'));
    assert.equal(r.code, 0, describeRun(r));
  });
});

describe('refused arguments', { concurrency: true }, () => {
  it('an unknown --dataset lists the valid datasets', async () => {
    const out = await outIn('dataset-foo');
    const r = await runCli(['protect', '--dataset', 'foo', '--data-dir', work, '--out', out]);
    await assertRefused(r, out);
    assert.match(r.stderr, /foo/);
    for (const d of ['cifar10', 'cifar100', 'fashion-mnist', 'mnist', 'folder', 'npy'])
      assert.ok(r.stderr.includes(d), `${d} not in: ${r.stderr}`);
  });

  it('an unknown --format lists the valid formats', async () => {
    const out = await outIn('format-bmp');
    const r = await runCli([
      'protect',
      '--dataset',
      'cifar10',
      '--data-dir',
      work,
      '--format',
      'bmp',
      '--out',
      out,
    ]);
    await assertRefused(r, out);
    assert.match(r.stderr, /bmp/);
    for (const f of ['cifar', 'idx', 'npy', 'png'])
      assert.ok(r.stderr.includes(f), `${f} not in: ${r.stderr}`);
  });
});

describe('class-folder datasets', { concurrency: true, skip: NO_CIFAR }, () => {
  /** Three classes of four real CIFAR-10 images each, as PNG; returns the folder. */
  async function pngFolder(name: string): Promise<string> {
    const dir = path.join(work, 'inputs', name);
    const wanted = new Map([
      [0, 'airplane'],
      [3, 'cat'],
      [5, 'dog'],
    ]);
    const made = new Map<number, number>();
    for (let r = 0; r < 200; r++) {
      const rec = smallTrain.subarray(r * RECORD, (r + 1) * RECORD);
      const cls = wanted.get(rec[0]);
      const n = made.get(rec[0]) ?? 0;
      if (!cls || n >= 4) continue;
      made.set(rec[0], n + 1);
      await mkdir(path.join(dir, cls), { recursive: true });
      await sharp(recordToHwc(rec), { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toFile(path.join(dir, cls, `img${n}.png`));
    }
    assert.deepEqual([...made.values()], [4, 4, 4]);
    return dir;
  }

  it('a good folder is protected (control for the two cases below)', async () => {
    const dir = await pngFolder('folder-ok');
    const out = path.join(work, 'folder-ok-out');
    const r = await runCli(['protect', '--dataset', 'folder', '--data-dir', dir, '--out', out]);
    assert.equal(r.code, 0, describeRun(r));
    const m = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as ManifestJson;
    assert.deepEqual(
      m.classes.map((c) => c.name),
      ['airplane', 'cat', 'dog'],
    );
    assert.equal(m.output.train, 12);
  });

  it('a corrupt image file: names the file', async () => {
    const dir = await pngFolder('folder-corrupt');
    const bad = path.join(dir, 'cat', 'bad.png');
    await writeFile(bad, 'this is not a PNG file, just some text\n');
    const out = await outIn('folder-corrupt');
    const r = await runCli(['protect', '--dataset', 'folder', '--data-dir', dir, '--out', out]);
    await assertRefused(r, out);
    assert.ok(r.stderr.includes(bad), r.stderr);
    assert.match(r.stderr, /not a readable image/);
  });

  it('images of different sizes: names the odd file and both sizes', async () => {
    const dir = await pngFolder('folder-sizes');
    const big = path.join(dir, 'dog', 'big.png');
    await sharp(path.join(dir, 'dog', 'img0.png'))
      .resize(40, 40)
      .png()
      .toFile(big);
    const out = await outIn('folder-sizes');
    const r = await runCli(['protect', '--dataset', 'folder', '--data-dir', dir, '--out', out]);
    await assertRefused(r, out);
    assert.ok(r.stderr.includes(big), r.stderr);
    assert.match(r.stderr, /40×40/);
    assert.match(r.stderr, /32×32/);
  });
});

describe('Fashion-MNIST', { skip: NO_FASHION }, () => {
  it('--format cifar is refused for 28×28×1 images, suggesting png or npy', async () => {
    // 300 real test images as a small training split, plain (not gzipped) IDX.
    const img = gunzipSync(await readFile(path.join(FASHION_DIR, 't10k-images-idx3-ubyte.gz')));
    const lab = gunzipSync(await readFile(path.join(FASHION_DIR, 't10k-labels-idx1-ubyte.gz')));
    const n = 300;
    const imgHeader = Buffer.from(img.subarray(0, 16));
    imgHeader.writeUInt32BE(n, 4);
    const labHeader = Buffer.from(lab.subarray(0, 8));
    labHeader.writeUInt32BE(n, 4);
    const dir = path.join(work, 'inputs', 'fashion');
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'train-images-idx3-ubyte'),
      Buffer.concat([imgHeader, img.subarray(16, 16 + n * 784)]),
    );
    await writeFile(
      path.join(dir, 'train-labels-idx1-ubyte'),
      Buffer.concat([labHeader, lab.subarray(8, 8 + n)]),
    );
    const out = await outIn('fashion-cifar');
    const r = await runCli([
      'protect',
      '--dataset',
      'fashion-mnist',
      '--data-dir',
      dir,
      '--format',
      'cifar',
      '--out',
      out,
    ]);
    await assertRefused(r, out);
    assert.match(r.stderr, /28×28×1/);
    assert.match(r.stderr, /--format png/);
    assert.match(r.stderr, /npy/);

    // Control: the same dataset in its own format works.
    const ok = path.join(work, 'fashion-idx-out');
    const r2 = await runCli([
      'protect',
      '--dataset',
      'fashion-mnist',
      '--data-dir',
      dir,
      '--out',
      ok,
    ]);
    assert.equal(r2.code, 0, describeRun(r2));
    assert.ok(existsSync(path.join(ok, 'train-images-idx3-ubyte.gz')));
  });
});

describe('interruption removes the unfinished output', { skip: NO_CIFAR }, () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} while writing PNGs: exit ${code}, no output and no temporary folder`, async () => {
      const parent = path.join(work, `interrupt-${signal}`);
      await mkdir(parent);
      const out = path.join(parent, 'slow');
      const child = spawn(
        process.execPath,
        [
          CLI,
          'protect',
          '--dataset',
          'cifar10',
          '--data-dir',
          CIFAR_DIR,
          '--format',
          'png',
          '--out',
          out,
        ],
        { env: childEnv() },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.resume();
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
        child.on('close', (c, s) => res({ code: c, signal: s })),
      );
      let done = false;
      void exited.then(() => (done = true));
      try {
        const tmp = path.join(parent, `.slow.tmp-${child.pid}`);
        // Wait until PNGs are being written into the temporary folder.
        const deadline = Date.now() + 60_000;
        while (!existsSync(path.join(tmp, 'train'))) {
          assert.ok(!done, `protect exited before writing: ${stderr}`);
          assert.ok(Date.now() < deadline, `${tmp}/train never appeared`);
          await sleep(20);
        }
        await sleep(200);
        assert.ok(!done, `protect finished before it could be interrupted: ${stderr}`);
        child.kill(signal);
        const res = await exited;
        assert.ok(
          res.code === code || res.signal === signal,
          `exit ${res.code} signal ${res.signal}; stderr: ${stderr}`,
        );
        assert.match(stderr, new RegExp(`interrupted \\(${signal}\\)`));
        assert.ok(!existsSync(out), `${out} exists after ${signal}`);
        assert.deepEqual(await readdir(parent), [], `left in ${parent} after ${signal}`);
      } finally {
        if (!done) child.kill('SIGKILL');
        await exited;
      }
    });
  }
});

describe('help and version', { concurrency: true }, () => {
  it('protect --help lists every option', async () => {
    const r = await runCli(['protect', '--help']);
    assert.equal(r.code, 0, describeRun(r));
    for (const flag of [
      '--dataset',
      '--data-dir',
      '--out',
      '--format',
      '--objective',
      '--pixels',
      '--force',
      '--download',
    ])
      assert.ok(r.stdout.includes(flag), `${flag} not in:\n${r.stdout}`);
  });

  it('--version prints the package.json version', async () => {
    const r = await runCli(['--version']);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout.trim(), VERSION);
  });
});

describe('--download without a network', { concurrency: true }, () => {
  // Every method downloads (the noise methods used to ignore --download and fail on the empty
  // folder instead).
  for (const method of ['ops', 'random-noise', 'em'])
    it(`cifar10 --method ${method}: tries the download, fails quickly, writes no output`, async () => {
      const dataDir = await mkdtemp(path.join(work, 'empty-'));
      const out = await outIn(`download-${method}`);
      const r = await runCli(
        [
          ...['protect', '--dataset', 'cifar10', '--download', '--data-dir', dataDir],
          ...['--out', out, '--method', method],
        ],
        60_000,
      );
      await assertRefused(r, out);
      assert.match(r.stderr, /--data-dir/);
      assert.match(r.stderr, /cifar10/);
      assert.match(r.stderr, /download|cs\.toronto\.edu/i);
      // No partial archive or temporary extraction folder left in the data folder.
      assert.deepEqual(await readdir(dataDir), []);
    });

  it('fashion-mnist: says --download is for cifar10 and cifar100', async () => {
    const out = await outIn('download-fashion');
    const r = await runCli([
      'protect',
      '--dataset',
      'fashion-mnist',
      '--download',
      '--data-dir',
      path.join(work, 'nowhere'),
      '--out',
      out,
    ]);
    await assertRefused(r, out);
    assert.match(r.stderr, /--download/);
    assert.match(r.stderr, /cifar10/);
    assert.match(r.stderr, /cifar100/);
  });
});
