/**
 * NumPy .npy reading and writing: exact round trips on real CIFAR-10 (RGB) and Fashion-MNIST
 * (grayscale) subsets, NumPy itself loading what writeNpy wrote and writing (v1.0 and v2.0) what
 * readNpyFolder reads, and errors that name the file at fault.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { readNpyFolder, writeNpy } from '../src/data/npy.js';
import {
  CIFAR_DIR,
  FASHION_DIR,
  NO_FASHION,
  assertSameDataset,
  cifarClassNames,
  cifarDataset,
  cifarRecords,
  fashionDataset,
  noNumpy,
  runPython,
  sha256,
  tempDirs,
  splits,
  FASHION_NAMES,
} from './helpers.js';

const newDir = tempDirs('npy');
const NO_NUMPY = noNumpy();

/** .npy bytes with a header laid out the way NumPy writes it (64-byte aligned, version 1.0). */
function npyBytes(
  descr: string,
  shape: number[],
  data: Uint8Array,
  options: { fortran?: boolean } = {},
): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const order = options.fortran ? 'True' : 'False';
  let dict = `{'descr': '${descr}', 'fortran_order': ${order}, 'shape': (${dims}), }`;
  dict += ' '.repeat((64 - ((10 + dict.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.from('\x93NUMPY\x01\x00\x00\x00', 'latin1');
  head.writeUInt16LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data]);
}

function int64Labels(labels: ArrayLike<number>): Uint8Array {
  return new Uint8Array(BigInt64Array.from(Array.from(labels, BigInt)).buffer);
}

/** Checksums computed the same way in JS and in Python (all exact below 2^53). */
function checksums(ds: Dataset) {
  let xSum = 0;
  let xWeighted = 0;
  for (let i = 0; i < ds.images.length; i++) {
    xSum += ds.images[i];
    xWeighted += ds.images[i] * (i % 65521);
  }
  let ySum = 0;
  let yWeighted = 0;
  for (let i = 0; i < ds.labels.length; i++) {
    ySum += ds.labels[i];
    yWeighted += ds.labels[i] * (i + 1);
  }
  return { xSum, xWeighted, ySum, yWeighted };
}

const PY_INSPECT = `
import json, sys
import numpy as np
out = {}
for split in sys.argv[2:]:
    x = np.load(f"{sys.argv[1]}/x_{split}.npy", allow_pickle=False)
    y = np.load(f"{sys.argv[1]}/y_{split}.npy", allow_pickle=False)
    flat = x.reshape(-1).astype(np.int64)
    out[split] = dict(
        dtype=str(x.dtype), shape=list(x.shape), c_order=bool(x.flags.c_contiguous),
        ydtype=str(y.dtype), yshape=list(y.shape),
        xSum=int(flat.sum()), xWeighted=int((flat * (np.arange(flat.size) % 65521)).sum()),
        ySum=int(y.sum()), yWeighted=int((y * np.arange(1, y.size + 1)).sum()),
    )
print(json.dumps(out))
`;

describe('writeNpy → readNpyFolder round trip on real data', () => {
  it('is exact for RGB CIFAR-10 images (N×32×32×3) with class names', async () => {
    const names = await cifarClassNames();
    const train = cifarDataset(await cifarRecords('data_batch_1.bin', 600, 40), names);
    const test = cifarDataset(await cifarRecords('test_batch_exact_first1000.bin', 150), names);
    const dir = await newDir();
    let reported = 0;
    await writeNpy(dir, splits(train, test), () => reported++);
    assert.equal(reported, 750);
    const back = await readNpyFolder(dir);
    assert.equal(back.format, 'npy');
    assertSameDataset(back.train, train, 'train');
    assert.ok(back.test);
    assertSameDataset(back.test, test, 'test');
    assert.equal(await readFile(path.join(dir, 'classes.txt'), 'utf8'), names.join('\n') + '\n');
    const x = await readFile(path.join(dir, 'x_train.npy'));
    assert.equal(x.length, 128 + 600 * 3072, 'a 128-byte header, then the pixels');
    assert.deepEqual(
      back.files.map((f) => path.basename(f.path)),
      ['x_train.npy', 'y_train.npy', 'x_test.npy', 'y_test.npy'],
    );
    assert.equal(back.files[0].sha256, sha256(x));
  });

  it('is exact for grayscale Fashion-MNIST images (N×28×28×1)', { skip: NO_FASHION }, async () => {
    const train = await fashionDataset('train', 700, FASHION_NAMES);
    const test = await fashionDataset('t10k', 90, FASHION_NAMES);
    const dir = await newDir();
    await writeNpy(dir, splits(train, test));
    const back = await readNpyFolder(dir);
    assertSameDataset(back.train, train, 'train');
    assert.ok(back.test);
    assertSameDataset(back.test, test, 'test');
    assert.equal(back.train.channels, 1);
  });

  it('keeps a training split alone (no x_test.npy)', async () => {
    const names = await cifarClassNames();
    const train = cifarDataset(await cifarRecords('data_batch_4.bin', 33), names);
    const dir = await newDir();
    await writeNpy(dir, splits(train, null));
    const back = await readNpyFolder(dir);
    assert.equal(back.test, null);
    assertSameDataset(back.train, train, 'train');
  });
});

describe('NumPy interoperability', { skip: NO_NUMPY }, () => {
  it('NumPy loads writeNpy’s files as uint8 (N,H,W,C) and int64 labels with equal checksums', async () => {
    const names = await cifarClassNames();
    const rgb = cifarDataset(await cifarRecords('data_batch_2.bin', 400, 1000), names);
    const rgbTest = cifarDataset(
      await cifarRecords('test_batch_exact_first1000.bin', 77, 900),
      names,
    );
    const dir = await newDir();
    await writeNpy(dir, splits(rgb, rgbTest));
    const got = JSON.parse(runPython(PY_INSPECT, [dir, 'train', 'test']));
    for (const [split, ds] of [
      ['train', rgb],
      ['test', rgbTest],
    ] as const) {
      const n = ds.labels.length;
      assert.deepEqual(got[split], {
        dtype: 'uint8',
        shape: [n, 32, 32, 3],
        c_order: true,
        ydtype: 'int64',
        yshape: [n],
        ...checksums(ds),
      });
    }
  });

  it('NumPy loads grayscale files as (N,28,28,1)', { skip: NO_FASHION }, async () => {
    const gray = await fashionDataset('t10k', 250, FASHION_NAMES);
    const dir = await newDir();
    await writeNpy(dir, splits(gray, null));
    const got = JSON.parse(runPython(PY_INSPECT, [dir, 'train']));
    assert.deepEqual(got.train, {
      dtype: 'uint8',
      shape: [250, 28, 28, 1],
      c_order: true,
      ydtype: 'int64',
      yshape: [250],
      ...checksums(gray),
    });
  });

  describe('readNpyFolder reads files NumPy wrote', () => {
    let gray: Dataset;
    let grayTest: Dataset;
    let dir: string;

    before(async () => {
      if (NO_FASHION) return;
      gray = await fashionDataset('train', 500, FASHION_NAMES);
      grayTest = await fashionDataset('t10k', 60, FASHION_NAMES);
      dir = await newDir();
      // Grayscale (N, H, W) uint8 from the real gzipped files, int32 labels; the test split in
      // format version 2.0.
      runPython(
        `
import gzip, sys
import numpy as np
src, out = sys.argv[1], sys.argv[2]
def load(split, n):
    x = np.frombuffer(gzip.open(f"{src}/{split}-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
    y = np.frombuffer(gzip.open(f"{src}/{split}-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    return x.reshape(-1, 28, 28)[:n], y[:n].astype(np.int32)
x, y = load("train", 500)
np.save(f"{out}/x_train.npy", x)
np.save(f"{out}/y_train.npy", y)
x, y = load("t10k", 60)
for name, a in (("x_test", x), ("y_test", y)):
    with open(f"{out}/{name}.npy", "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
`,
        [FASHION_DIR, dir],
      );
    });

    it(
      'grayscale (N,H,W) uint8 with int32 labels, test split in format 2.0',
      {
        skip: NO_FASHION,
      },
      async () => {
        const head = await readFile(path.join(dir, 'x_test.npy'));
        assert.deepEqual([head[6], head[7]], [2, 0], 'x_test.npy is a version 2.0 file');
        const data = await readNpyFolder(dir);
        const digits = Array.from({ length: 10 }, (_, i) => String(i));
        assertSameDataset(data.train, { ...gray, classNames: digits }, 'train');
        assert.ok(data.test);
        assertSameDataset(data.test, { ...grayTest, classNames: digits }, 'test');
        // With a classes.txt, its names.
        await writeFile(path.join(dir, 'classes.txt'), FASHION_NAMES.join('\n') + '\n');
        const named = await readNpyFolder(dir);
        assert.deepEqual(named.train.classNames, FASHION_NAMES);
        await rm(path.join(dir, 'classes.txt'));
      },
    );

    it('RGB from a transposed (non-contiguous) CIFAR array, uint8 / int64 / uint16 labels', async () => {
      const names = await cifarClassNames();
      const rgb = cifarDataset(await cifarRecords('data_batch_5.bin', 300, 123), names);
      for (const ydtype of ['uint8', 'int64', 'uint16']) {
        const out = await newDir();
        runPython(
          `
import sys
import numpy as np
src, out, ydtype = sys.argv[1:4]
d = np.fromfile(f"{src}/data_batch_5.bin", np.uint8).reshape(-1, 3073)[123:423]
np.save(f"{out}/x_train.npy", d[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
np.save(f"{out}/y_train.npy", d[:, 0].astype(ydtype))
`,
          [CIFAR_DIR, out, ydtype],
        );
        await writeFile(path.join(out, 'classes.txt'), names.join('\r\n') + '\r\n');
        const data = await readNpyFolder(out);
        assertSameDataset(data.train, rgb, `labels ${ydtype}`);
      }
    });

    it('refuses a Fortran-ordered array NumPy saved', async () => {
      const out = await newDir();
      runPython(
        `
import sys
import numpy as np
x = np.asfortranarray(np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3))
np.save(f"{sys.argv[1]}/x_train.npy", x)
np.save(f"{sys.argv[1]}/y_train.npy", np.array([0, 1]))
`,
        [out],
      );
      await assert.rejects(readNpyFolder(out), /x_train\.npy: Fortran-ordered arrays/);
    });
  });
});

describe('readNpyFolder errors name the file at fault', () => {
  let rgb: Dataset;
  const N = 12;

  before(async () => {
    rgb = cifarDataset(await cifarRecords('data_batch_1.bin', N), await cifarClassNames());
  });

  /** A folder with x_train.npy / y_train.npy built from the real subset, optionally altered. */
  async function folder(x?: Buffer, y?: Buffer): Promise<string> {
    const dir = await newDir();
    await writeFile(
      path.join(dir, 'x_train.npy'),
      x ?? npyBytes('|u1', [N, 32, 32, 3], rgb.images),
    );
    await writeFile(
      path.join(dir, 'y_train.npy'),
      y ?? npyBytes('<i8', [N], int64Labels(rgb.labels)),
    );
    return dir;
  }

  it('reads the hand-built fixture (sanity check for the error cases)', async () => {
    const data = await readNpyFolder(await folder());
    assertSameDataset(
      data.train,
      { ...rgb, classNames: rgb.classNames.map((_, i) => String(i)) },
      'train',
    );
  });

  it('Fortran order', async () => {
    const x = npyBytes('|u1', [N, 32, 32, 3], rgb.images, { fortran: true });
    await assert.rejects(
      readNpyFolder(await folder(x)),
      /x_train\.npy: Fortran-ordered arrays are not supported/,
    );
  });

  it('wrong dtype for x', async () => {
    const f32 = new Uint8Array(new Float32Array(Array.from(rgb.images, (v) => v / 255)).buffer);
    const x = npyBytes('<f4', [N, 32, 32, 3], f32);
    await assert.rejects(
      readNpyFolder(await folder(x)),
      /x_train\.npy: dtype '<f4', expected uint8 \('\|u1'\)/,
    );
  });

  it('wrong shape or channel count for x', async () => {
    const flat = npyBytes('|u1', [N, 3072], rgb.images);
    await assert.rejects(
      readNpyFolder(await folder(flat)),
      /x_train\.npy: shape \(12, 3072\), expected N×H×W/,
    );
    const two = npyBytes('|u1', [N, 32, 48, 2], rgb.images);
    await assert.rejects(
      readNpyFolder(await folder(two)),
      /x_train\.npy: 2 channels, expected 1 or 3/,
    );
  });

  it('y length mismatch', async () => {
    const y = npyBytes('<i8', [N - 1], int64Labels(rgb.labels.subarray(0, N - 1)));
    await assert.rejects(
      readNpyFolder(await folder(undefined, y)),
      /y_train\.npy: shape \(11\), expected \(12,\) to match .*x_train\.npy/,
    );
  });

  it('wrong dtype or negative labels in y', async () => {
    const f8 = new Uint8Array(new Float64Array(Array.from(rgb.labels)).buffer);
    await assert.rejects(
      readNpyFolder(await folder(undefined, npyBytes('<f8', [N], f8))),
      /y_train\.npy: dtype '<f8', expected an integer type/,
    );
    const labels = Array.from(rgb.labels);
    labels[3] = -1;
    await assert.rejects(
      readNpyFolder(await folder(undefined, npyBytes('<i8', [N], int64Labels(labels)))),
      /y_train\.npy record 3: negative label -1/,
    );
  });

  it('truncated data in x and in y', async () => {
    const x = npyBytes('|u1', [N, 32, 32, 3], rgb.images);
    await assert.rejects(
      readNpyFolder(await folder(x.subarray(0, x.length - 1))),
      /x_train\.npy: 36863 data bytes, expected 36864 \(truncated/,
    );
    await assert.rejects(
      readNpyFolder(await folder(Buffer.concat([x, Buffer.alloc(3)]))),
      /x_train\.npy: 36867 data bytes, expected 36864 \(truncated or over-long\)/,
    );
    const y = npyBytes('<i8', [N], int64Labels(rgb.labels));
    await assert.rejects(
      readNpyFolder(await folder(undefined, y.subarray(0, y.length - 4))),
      /y_train\.npy: 92 data bytes, expected 96 \(truncated or over-long\), for shape \(12\) of '<i8'/,
    );
  });

  it('file cut inside its header', async () => {
    const x = npyBytes('|u1', [N, 32, 32, 3], rgb.images);
    await assert.rejects(readNpyFolder(await folder(x.subarray(0, 80))), /x_train\.npy/);
  });

  it('not a .npy file, missing files', async () => {
    await assert.rejects(
      readNpyFolder(await folder(Buffer.from(rgb.images.subarray(0, 100)))),
      /x_train\.npy: not a \.npy file/,
    );
    const dir = await folder();
    await rm(path.join(dir, 'y_train.npy'));
    await assert.rejects(readNpyFolder(dir), /y_train\.npy: not found \(labels\)/);
    await rm(path.join(dir, 'x_train.npy'));
    await assert.rejects(readNpyFolder(dir), (e: Error) =>
      e.message.startsWith(`${dir}: no x_train.npy`),
    );
  });

  it('a label beyond the names in classes.txt', async () => {
    const dir = await folder();
    await writeFile(path.join(dir, 'classes.txt'), 'a\nb\nc\n');
    const first = rgb.labels.findIndex((l) => l >= 3);
    await assert.rejects(
      readNpyFolder(dir),
      new RegExp(
        `y_train\\.npy record ${first}: label ${rgb.labels[first]}, expected 0\\.\\.2 ` +
          `\\(.*classes\\.txt names 3 classes\\)`,
      ),
    );
  });
});
