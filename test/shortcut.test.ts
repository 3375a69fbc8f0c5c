/**
 * The OPS search past 16 pixels per class (the sorting path of topCandidates) and the statistics
 * past 65 536 images of a class (the flush of the 32-bit partial sums), each against numpy: paths
 * that the real-data tests of search.test.ts and record-stats.test.ts (k ≤ 3, 10 000 images) never
 * reach. Written to kill the mutants that passed them (docs/mutation.md).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { RecordStatsAccumulator } from '../src/shortcut/record-stats.js';
import { searchDataset, topCandidates } from '../src/shortcut/search.js';
import { type ClassStats, datasetStats } from '../src/shortcut/stats.js';
import { noNumpy, runPython, tempDirs } from './helpers.js';
import { Rand } from './fuzz-helpers.js';

const tmp = tempDirs('shortcut');
const skip = noNumpy();

/** Reads back the float64 arrays python printed as base64, one per word. */
function float64s(out: string): Float64Array[] {
  return out
    .trim()
    .split(' ')
    .map((b) => {
      const buf = Buffer.from(b, 'base64');
      return new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    });
}

describe('search with more than 16 pixels per class', { skip }, () => {
  it('topCandidates orders as numpy’s lexsort (score descending, then index), ties and ∞ included', async () => {
    const r = new Rand(11);
    // Few distinct values, so that ties are common; some ∞ (zero spread) and zeros (taken pairs).
    const levels = [0, 0.25, 0.5, 1.5, 2, Infinity];
    const scores = Float64Array.from({ length: 300 }, () => levels[r.int(levels.length)]);
    const file = path.join(await tmp(), 'scores.bin');
    writeFileSync(file, scores);
    const order = runPython(
      'import sys, numpy as np\n' +
        's = np.fromfile(sys.argv[1], np.float64)\n' +
        'print(" ".join(map(str, np.lexsort((np.arange(len(s)), -s)))))',
      [file],
    )
      .trim()
      .split(' ')
      .map(Number);
    // By hand: the best at index 0, and a tie for the best that includes index 0.
    assert.deepEqual(topCandidates(Float64Array.from([9, 1, 1]), 1), [0]);
    assert.deepEqual(topCandidates(Float64Array.from([5, 5, 1]), 2), [0, 1]);
    assert.deepEqual(topCandidates(Float64Array.from([1, 7, 7, 0]), 3), [1, 2, 0]);
    for (const k of [1, 16, 17, 18, 40, 299, 300])
      assert.deepEqual(topCandidates(scores, k), order.slice(0, k), `k = ${k}`);
  });

  it('searchDataset with k = 24 and 40 equals a numpy transcription of the search', async () => {
    // 3 classes of 8×6 RGB images: 384 candidates per class (k ≤ H·W = 48).
    const r = new Rand(5);
    const [H, W, C, n] = [8, 6, 3, 60];
    const images = r.bytes(n * H * W * C);
    // Saturate a few values so that some candidates have zero spread (score ∞) and tie.
    for (let i = 0; i < n; i++) images[i * H * W * C + 7] = 255;
    const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
    const ds: Dataset = {
      height: H,
      width: W,
      channels: C,
      images,
      labels,
      classNames: ['a', 'b', 'c'],
    };
    const dir = await tmp();
    writeFileSync(path.join(dir, 'x.bin'), images);
    writeFileSync(path.join(dir, 'y.bin'), new Uint8Array(labels));
    for (const k of [24, 40]) {
      // The official objective as the spec words it, in exact integer arithmetic (python ints and
      // fractions, so near-ties order as they truly do): per candidate, with a = |255·target − x|
      // over the n·C values, mean/std = A/√(N·ΣA² − A²) is ordered by A²/(N·ΣA² − A²); zero
      // spread gives ∞ when A > 0; taken pairs score 0; ties go to the lower index.
      const out = runPython(
        'import sys, numpy as np\nfrom fractions import Fraction\n' +
          `H, W, C, k = ${H}, ${W}, ${C}, ${k}\n` +
          'x = np.fromfile(sys.argv[1], np.uint8).reshape(-1, H * W, C).astype(np.int64)\n' +
          'y = np.fromfile(sys.argv[2], np.uint8)\n' +
          'bits = np.array([[(v >> (C - 1 - c)) & 1 for c in range(C)] for v in range(2 ** C)])\n' +
          'taken = set(); res = []\n' +
          'for label in range(3):\n' +
          '  xs = x[y == label]\n' +
          '  a = np.abs(255 * bits[None, None, :, :] - xs[:, :, None, :])\n' +
          '  a = a.transpose(1, 2, 0, 3).reshape(H * W * 2 ** C, -1)\n' +
          '  N = a.shape[1]\n' +
          '  def key(i):\n' +
          '    if i in taken: return (0, Fraction(0), -i)\n' +
          '    A = int(a[i].sum()); d = N * int((a[i] ** 2).sum()) - A * A\n' +
          '    if d == 0: return (2, Fraction(0), -i) if A > 0 else (0, Fraction(0), -i)\n' +
          '    return (1, Fraction(A * A, d), -i)\n' +
          '  best = sorted(range(len(a)), key=key, reverse=True)[:k]\n' +
          '  taken.update(best); res += best\n' +
          'print(" ".join(map(str, res)))',
        [path.join(dir, 'x.bin'), path.join(dir, 'y.bin')],
      );
      const want = out.trim().split(' ').map(Number);
      const got = searchDataset(ds, { pixels: k }).classes.flatMap((c) =>
        c.pixels.map((p) => (p.row * W + p.col) * 8 + p.value.reduce((a, v) => a * 2 + v / 255, 0)),
      );
      assert.deepEqual(got, want, `k = ${k}`);
    }
  });
});

/** numpy's exact per-class Σx, Σx² and channel cross products of n×P×C images, as float64. */
async function numpyStats(images: Uint8Array, labels: Uint8Array, P: number, C: number) {
  const dir = await tmp();
  writeFileSync(path.join(dir, 'x.bin'), images);
  writeFileSync(path.join(dir, 'y.bin'), labels);
  return float64s(
    runPython(
      'import sys, base64, numpy as np\n' +
        `P, C = ${P}, ${C}\n` +
        'x = np.fromfile(sys.argv[1], np.uint8).reshape(-1, P, C).astype(np.int64)\n' +
        'y = np.fromfile(sys.argv[2], np.uint8)\n' +
        'pairs = [(a, b) for a in range(C) for b in range(a + 1, C)]\n' +
        'n = np.bincount(y, minlength=2).astype(np.float64)\n' +
        's = np.stack([x[y == k].sum(0) for k in range(2)]).astype(np.float64)\n' +
        'q = np.stack([(x[y == k] ** 2).sum(0) for k in range(2)]).astype(np.float64)\n' +
        'c = np.stack([np.stack([(x[y == k][:, :, a] * x[y == k][:, :, b]).sum(0) for a, b in pairs], -1)' +
        ' for k in range(2)]).astype(np.float64)\n' +
        'print(" ".join(base64.b64encode(a.tobytes()).decode() for a in (n, s, q, c)))',
      [path.join(dir, 'x.bin'), path.join(dir, 'y.bin')],
    ),
  );
}

function assertStats(ours: ClassStats, want: Float64Array[], what: string): void {
  const [n, s, q, c] = want;
  assert.deepEqual(Array.from(ours.counts), Array.from(n), `${what}: counts`);
  assert.deepEqual(Array.from(ours.sum), Array.from(s), `${what}: Σx`);
  assert.deepEqual(Array.from(ours.sumSq), Array.from(q), `${what}: Σx²`);
  assert.deepEqual(Array.from(ours.cross ?? []), Array.from(c), `${what}: cross products`);
}

/**
 * 2 classes, 150 000 images of class 1 and 50 000 of class 0, interleaved, nearly all bytes 255:
 * class 1's Σx² and cross products pass 2³² (255²·66 052 > 2³²) twice, so the 32-bit partial sums
 * must be flushed, exactly every 65 536 images of a class, and only that class's.
 */
function bigTwoClass(P: number, C: number) {
  const r = new Rand(7);
  const size = P * C;
  const count = 200_000;
  const images = new Uint8Array(count * size).fill(255);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 4 === 0 ? 0 : 1;
    // A few other values, so that an element mixed up with another one shows.
    images[i * size + r.int(size)] = r.int(256);
  }
  return { images, labels };
}

describe('statistics past 65 536 images of a class (the overflow flush)', { skip }, () => {
  it('StatsAccumulator (pixel order): Σx, Σx², cross products equal numpy’s, to the unit', async () => {
    const [H, W, C] = [2, 2, 3];
    const { images, labels } = bigTwoClass(H * W, C);
    const ds: Dataset = {
      height: H,
      width: W,
      channels: C,
      images,
      labels: Int32Array.from(labels),
      classNames: ['a', 'b'],
    };
    const want = await numpyStats(images, labels, H * W, C);
    assert.ok(want[2][12 + 1] > 2 ** 33, 'class 1 passes 2³² twice');
    assertStats(datasetStats(ds, true), want, 'StatsAccumulator');
  });

  for (const [H, W, C, simd] of [
    [2, 2, 4, true],
    [2, 2, 3, false],
  ] as const)
    it(`RecordStatsAccumulator (${simd ? 'SIMD kernel' : 'JavaScript loop'}): equal to numpy’s`, async () => {
      const P = H * W;
      const size = P * C;
      const { images, labels } = bigTwoClass(P, C);
      // Records: [label][plane 0][plane 1]…, CIFAR's channel-planar layout.
      const R = 1 + size;
      const records = new Uint8Array(labels.length * R);
      for (let i = 0; i < labels.length; i++) {
        records[i * R] = labels[i];
        for (let p = 0; p < P; p++)
          for (let c = 0; c < C; c++) records[i * R + 1 + c * P + p] = images[i * size + p * C + c];
      }
      const acc = new RecordStatsAccumulator(
        { height: H, width: W, channels: C, recordBytes: R, labelAt: 0, pixelsAt: 1 },
        2,
        true,
      );
      assert.equal(acc.usesSimd, simd);
      // Uneven chunks, as the reader hands them out.
      for (let at = 0; at < labels.length; at += 70_001)
        acc.addRecords(records.subarray(at * R, Math.min(labels.length, at + 70_001) * R));
      assertStats(acc.finish(), await numpyStats(images, labels, P, C), 'RecordStatsAccumulator');
    });
});
