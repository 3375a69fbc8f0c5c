/**
 * The OPS statistics summed straight from CIFAR's channel-planar records (src/shortcut/
 * record-stats.ts), on the SIMD kernel (src/shortcut/simd-sums.ts) and on the JavaScript loop:
 * against numpy's per-class sums over a real CIFAR-10 batch, and against sums by hand.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RecordStatsAccumulator } from '../src/shortcut/record-stats.js';
import { simdSums } from '../src/shortcut/simd-sums.js';
import { CIFAR_DIR, noNumpy, runPython } from './helpers.js';
import { Rand } from './fuzz-helpers.js';

const BATCH = path.join(CIFAR_DIR, 'data_batch_1.bin');
const CIFAR = { height: 32, width: 32, channels: 3, recordBytes: 3073, labelAt: 0, pixelsAt: 1 };

describe('record statistics', () => {
  it('the SIMD kernel adds bytes and their squares into 32-bit sums, 16 at a time', () => {
    const k = simdSums(1 << 16);
    assert.ok(k, 'WebAssembly SIMD is available in Node 20');
    const r = new Rand(3);
    const n = 96;
    const x = r.bytes(n);
    x[0] = 255;
    x[n - 1] = 255;
    const [S, Q] = [4096, 8192];
    const s0 = Uint32Array.from({ length: n }, () => r.int(1 << 20));
    new Uint32Array(k.bytes.buffer, S, n).set(s0);
    k.bytes.set(x, 1); // an unaligned row, as CIFAR's are
    k.acc(1, S, Q, n);
    k.acc(1, S, Q, n);
    const s = new Uint32Array(k.bytes.buffer, S, n);
    const q = new Uint32Array(k.bytes.buffer, Q, n);
    for (let j = 0; j < n; j++) {
      assert.equal(s[j], s0[j] + 2 * x[j], `sum ${j}`);
      assert.equal(q[j], 2 * x[j] * x[j], `square ${j}`);
    }
    assert.equal(q[0], 2 * 65025);
  });

  it(
    'on data_batch_1: Σx, Σx² and the channel cross products per class equal numpy’s',
    { skip: existsSync(BATCH) ? noNumpy() : `no ${BATCH}` },
    async () => {
      const bytes = new Uint8Array(await readFile(BATCH));
      const acc = new RecordStatsAccumulator(CIFAR, 10, true);
      assert.ok(acc.usesSimd, 'the SIMD kernel ran');
      // In uneven pieces (the reader's chunks), whole records each.
      for (const [a, b] of [
        [0, 7],
        [7, 1500],
        [1500, 10000],
      ])
        acc.addRecords(bytes.subarray(a * 3073, b * 3073));
      const ours = acc.finish();
      const out = runPython(
        'import sys, base64, numpy as np\n' +
          'r = np.fromfile(sys.argv[1], np.uint8).reshape(-1, 3073)\n' +
          'y = r[:, 0]; x = r[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.int64)\n' +
          'x = x.reshape(len(x), 1024, 3)\n' +
          's = np.stack([x[y == k].sum(0) for k in range(10)]).astype(np.float64)\n' +
          'q = np.stack([(x[y == k] ** 2).sum(0) for k in range(10)]).astype(np.float64)\n' +
          'c = np.stack([np.stack([(x[y == k][:, :, a] * x[y == k][:, :, b]).sum(0) ' +
          'for a, b in ((0, 1), (0, 2), (1, 2))], -1) for k in range(10)]).astype(np.float64)\n' +
          'n = np.bincount(y, minlength=10).astype(np.float64)\n' +
          'print(" ".join(base64.b64encode(a.tobytes()).decode() for a in (n, s, q, c)))',
        [BATCH],
      );
      const [n, s, q, c] = out
        .trim()
        .split(' ')
        .map((b) => {
          const buf = Buffer.from(b, 'base64');
          return new Float64Array(buf.buffer, buf.byteOffset, buf.length / 8);
        });
      assert.deepEqual(Array.from(ours.counts), Array.from(n));
      assert.deepEqual(Array.from(ours.sum), Array.from(s), 'Σx');
      assert.deepEqual(Array.from(ours.sumSq), Array.from(q), 'Σx²');
      assert.deepEqual(Array.from(ours.cross ?? []), Array.from(c), 'cross products');
    },
  );

  it('rows that are not a multiple of 16 bytes take the JavaScript loop, with the same sums', () => {
    // 5×5×3 = 75 bytes a record, 2 label bytes (CIFAR-100-like), 4 classes.
    const layout = { height: 5, width: 5, channels: 3, recordBytes: 77, labelAt: 1, pixelsAt: 2 };
    const r = new Rand(9);
    const count = 40;
    const bytes = r.bytes(count * 77);
    for (let i = 0; i < count; i++) bytes[i * 77 + 1] = i % 4;
    const acc = new RecordStatsAccumulator(layout, 4, false);
    assert.equal(acc.usesSimd, false);
    acc.addRecords(bytes);
    const got = acc.finish();
    const sum = new Float64Array(4 * 75);
    const sq = new Float64Array(4 * 75);
    for (let i = 0; i < count; i++) {
      const k = i % 4;
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < 25; p++) {
          const v = bytes[i * 77 + 2 + c * 25 + p];
          sum[k * 75 + p * 3 + c] += v;
          sq[k * 75 + p * 3 + c] += v * v;
        }
    }
    assert.deepEqual(Array.from(got.sum), Array.from(sum));
    assert.deepEqual(Array.from(got.sumSq), Array.from(sq));
    assert.deepEqual(Array.from(got.counts), [10, 10, 10, 10]);
    assert.equal(got.cross, null);
  });
});
