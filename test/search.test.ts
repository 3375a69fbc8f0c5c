/**
 * The fast search against a plain transcription of the objectives, candidate by candidate, on real
 * CIFAR-10 and Fashion-MNIST subsets; plus the tie, zero-spread, exclusion and overwrite rules.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readCifar10 } from '../src/data/cifar.js';
import { readIdxFolder } from '../src/data/idx.js';
import type { Dataset } from '../src/data/dataset.js';
import { imageAt, imageSize, streamOf } from '../src/data/dataset.js';
import {
  candidateScores,
  searchDataset,
  selectPixels,
  type Objective,
} from '../src/shortcut/search.js';
import { datasetStats, streamStats } from '../src/shortcut/stats.js';
import { datasetStatsParallel } from '../src/shortcut/parallel-stats.js';
import { applyShortcut } from '../src/shortcut/apply.js';

const CIFAR = join(process.cwd(), '..', 'shared', 'data', 'cifar-10-batches-bin');
const FASHION = '/usr/share/datasets/fashion-mnist';

function subset(ds: Dataset, n: number): Dataset {
  const size = imageSize(ds);
  return { ...ds, images: ds.images.slice(0, n * size), labels: ds.labels.slice(0, n) };
}

/** The objective exactly as written in the spec, on [0,1] values, one candidate at a time. */
function naiveScore(
  ds: Dataset,
  label: number,
  row: number,
  col: number,
  v: number,
  objective: Objective,
): number {
  const C = ds.channels;
  const target = Array.from({ length: C }, (_, c) => (v >> (C - 1 - c)) & 1);
  const devs: number[] = [];
  const sums: number[] = [];
  for (let i = 0; i < ds.labels.length; i++) {
    if (ds.labels[i] !== label) continue;
    const img = imageAt(ds, i);
    let s = 0;
    for (let c = 0; c < C; c++) {
      const a = Math.abs(target[c] - img[(row * ds.width + col) * C + c] / 255);
      devs.push(a);
      s += a;
    }
    sums.push(s);
  }
  const xs = objective === 'official' ? devs : sums;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  const spread = objective === 'official' ? Math.sqrt(variance) : variance;
  if (spread < 1e-12) return mean > 0 ? Infinity : 0;
  return mean / spread;
}

/** Selection as the spec words it: label order, taken pairs score 0, best k, ties to lowest index. */
function naiveSearch(ds: Dataset, objective: Objective, k: number) {
  const colours = 1 << ds.channels;
  const taken = new Set<number>();
  const out: Array<Array<{ row: number; col: number; v: number; score: number }>> = [];
  for (let label = 0; label < ds.classNames.length; label++) {
    const cands: Array<{ i: number; score: number }> = [];
    for (let row = 0; row < ds.height; row++)
      for (let col = 0; col < ds.width; col++)
        for (let v = 0; v < colours; v++) {
          const i = (row * ds.width + col) * colours + v;
          cands.push({
            i,
            score: taken.has(i) ? 0 : naiveScore(ds, label, row, col, v, objective),
          });
        }
    cands.sort((a, b) => b.score - a.score || a.i - b.i);
    const best = cands.slice(0, k);
    best.forEach((b) => taken.add(b.i));
    out.push(
      best.map((b) => {
        const p = Math.floor(b.i / colours);
        return {
          row: Math.floor(p / ds.width),
          col: p % ds.width,
          v: b.i % colours,
          score: b.score,
        };
      }),
    );
  }
  return out;
}

function valueIndex(value: number[]): number {
  return value.reduce((acc, x) => acc * 2 + (x === 255 ? 1 : 0), 0);
}

describe('search against the plain transcription', () => {
  const cases: Array<[string, () => Promise<Dataset>]> = [
    ['CIFAR-10 (RGB)', async () => subset((await readCifar10(CIFAR)).train, 400)],
    ['Fashion-MNIST (grayscale)', async () => subset((await readIdxFolder(FASHION)).train, 400)],
  ];
  for (const [name, load] of cases) {
    describe(name, () => {
      let ds: Dataset;
      before(async () => {
        ds = await load();
      });
      for (const objective of ['official', 'paper'] as const) {
        for (const k of [1, 2, 3]) {
          it(`${objective}, k = ${k}`, () => {
            const fast = searchDataset(ds, { objective, pixels: k });
            const slow = naiveSearch(ds, objective, k);
            for (let label = 0; label < ds.classNames.length; label++) {
              const got = fast.classes[label].pixels;
              assert.equal(got.length, k);
              got.forEach((p, j) => {
                const want = slow[label][j];
                assert.deepEqual(
                  [p.row, p.col, valueIndex(p.value)],
                  [want.row, want.col, want.v],
                  `class ${label} pixel ${j}`,
                );
                if (!Number.isFinite(want.score)) assert.equal(p.score, want.score);
                else
                  assert.ok(
                    Math.abs(p.score - want.score) <= 1e-9 * want.score,
                    `score ${p.score} vs ${want.score}`,
                  );
              });
            }
          });
        }
      }
      it('protects exactly the chosen pixels and nothing else', () => {
        const result = searchDataset(ds, { pixels: 2 });
        const prot = applyShortcut(ds, result);
        const C = ds.channels;
        let changed = 0;
        for (let i = 0; i < ds.labels.length; i++) {
          const cls = result.classes[ds.labels[i]];
          const a = imageAt(ds, i);
          const b = imageAt(prot, i);
          const want = new Map<number, number[]>();
          for (const p of cls.pixels) want.set(p.row * ds.width + p.col, p.value);
          for (let q = 0; q < ds.height * ds.width; q++) {
            for (let c = 0; c < C; c++) {
              const target = want.get(q);
              if (target) assert.equal(b[q * C + c], target[c]);
              else assert.equal(b[q * C + c], a[q * C + c]);
              if (a[q * C + c] !== b[q * C + c]) changed++;
            }
          }
        }
        assert.ok(changed > 0);
      });
    });
  }
});

/** A tiny dataset from literal pixel rows (grayscale, 1 row). */
function tiny(rows: number[][], labels: number[], classes = 2): Dataset {
  return {
    height: 1,
    width: rows[0].length,
    channels: 1,
    images: Uint8Array.from(rows.flat()),
    labels: Int32Array.from(labels),
    classNames: Array.from({ length: classes }, (_, i) => `c${i}`),
  };
}

describe('selection rules', () => {
  it('ties go to the lowest flat index p·2^C + v, and taken pairs are excluded for later classes', () => {
    // Every candidate of both classes scores 1 (deviations {0,1}): a perfect tie everywhere.
    const ds = tiny(
      [
        [0, 0],
        [255, 255],
        [0, 0],
        [255, 255],
      ],
      [0, 0, 1, 1],
    );
    const r = searchDataset(ds, { pixels: 1 });
    const scores = candidateScores(datasetStats(ds, false), 0, 'official');
    assert.deepEqual(Array.from(scores), [1, 1, 1, 1]);
    assert.deepEqual(
      r.classes[0].pixels.map((p) => [p.col, p.value[0]]),
      [[0, 0]],
    );
    assert.deepEqual(
      r.classes[1].pixels.map((p) => [p.col, p.value[0]]),
      [[0, 255]],
    );
  });

  it('zero spread: +Infinity when the pixel is constant and away from the colour, 0 when equal', () => {
    const ds = tiny(
      [
        [10, 0],
        [10, 0],
        [0, 5],
        [0, 9],
      ],
      [0, 0, 1, 1],
    );
    for (const objective of ['official', 'paper'] as const) {
      const stats = datasetStats(ds, objective === 'paper');
      const s = Array.from(candidateScores(stats, 0, objective));
      // position 0 is 10 in every image: constant distance to black and to white.
      assert.deepEqual(s.slice(0, 2), [Infinity, Infinity]);
      // position 1 is 0 in every image: zero distance to black (score 0), constant to white.
      assert.deepEqual(s.slice(2, 4), [0, Infinity]);
      assert.ok(s.every((x) => !Number.isNaN(x)));
    }
    const r = searchDataset(ds);
    assert.deepEqual([r.classes[0].pixels[0].col, r.classes[0].pixels[0].value[0]], [0, 0]);
  });

  it('a class identical to an earlier one gets that class runner-up, never the same pair', async () => {
    const ds = subset((await readCifar10(CIFAR)).train, 300);
    const size = imageSize(ds);
    const idx = [...ds.labels.keys()].filter((i) => ds.labels[i] === 0);
    const images = new Uint8Array(2 * idx.length * size);
    idx.forEach((i, j) => {
      images.set(imageAt(ds, i), j * size);
      images.set(imageAt(ds, i), (idx.length + j) * size);
    });
    const labels = Int32Array.from([...idx.map(() => 0), ...idx.map(() => 1)]);
    const twin: Dataset = { ...ds, images, labels, classNames: ['a', 'b'] };
    const r = searchDataset(twin, { pixels: 1 });
    const single = searchDataset(
      {
        ...twin,
        images: images.slice(0, idx.length * size),
        labels: labels.slice(0, idx.length),
        classNames: ['a'],
      },
      { pixels: 2 },
    );
    assert.deepEqual(r.classes[0].pixels[0], single.classes[0].pixels[0]);
    const second = single.classes[0].pixels[1];
    assert.deepEqual(
      [r.classes[1].pixels[0].row, r.classes[1].pixels[0].col, r.classes[1].pixels[0].value],
      [second.row, second.col, second.value],
    );
  });

  it('k pixels at one position: the earlier is marked overwritten and the later one is written', async () => {
    const ds = subset((await readCifar10(CIFAR)).train, 500);
    const r = searchDataset(ds, { pixels: 3 });
    const prot = applyShortcut(ds, r);
    let seen = 0;
    for (const cls of r.classes) {
      cls.pixels.forEach((p, j) => {
        const later = cls.pixels.slice(j + 1).find((q) => q.row === p.row && q.col === p.col);
        assert.equal(p.overwritten === true, later !== undefined);
        if (later) {
          seen++;
          const i = ds.labels.indexOf(cls.label);
          const o = (p.row * ds.width + p.col) * 3;
          assert.deepEqual(Array.from(imageAt(prot, i).subarray(o, o + 3)), later.value);
        }
      });
    }
    assert.ok(seen > 0, 'real CIFAR-10 has classes whose best candidates share a position');
  });

  it('refuses empty classes, single-image classes and out-of-range k', () => {
    assert.throws(
      () =>
        searchDataset(
          tiny(
            [
              [1, 2],
              [3, 4],
            ],
            [0, 0],
            2,
          ),
        ),
      /class 'c1' \(label 1\) has no images/,
    );
    assert.throws(
      () =>
        searchDataset(
          tiny(
            [
              [1, 2],
              [3, 4],
              [5, 6],
            ],
            [0, 0, 1],
            2,
          ),
        ),
      /class 'c1' \(label 1\) has a single image/,
    );
    const ok = tiny(
      [
        [1, 2],
        [3, 4],
        [5, 6],
        [7, 8],
      ],
      [0, 0, 1, 1],
    );
    assert.throws(() => searchDataset(ok, { pixels: 0 }), /from 1 to H×W = 2/);
    assert.throws(() => searchDataset(ok, { pixels: 3 }), /from 1 to H×W = 2/);
    assert.doesNotThrow(() => searchDataset(ok, { pixels: 2 }));
  });
});

describe('statistics', () => {
  it('one-thread, streamed and two-thread passes agree exactly on the full CIFAR-10 training set', async () => {
    const { train } = await readCifar10(CIFAR);
    const one = datasetStats(train, true);
    const two = await datasetStatsParallel(train, true, 2);
    const streamed = await streamStats(streamOf(subsetFirst(train)), true);
    assert.deepEqual(two.counts, one.counts);
    assert.deepEqual(two.sum, one.sum);
    assert.deepEqual(two.sumSq, one.sumSq);
    assert.deepEqual(two.cross, one.cross);
    assert.deepEqual(streamed.sum, datasetStats(subsetFirst(train), true).sum);
    // Σx over every class and position is the dataset's total, checked independently.
    let total = 0;
    for (let i = 0; i < train.images.length; i++) total += train.images[i];
    assert.equal(
      one.sum.reduce((a, b) => a + b, 0),
      total,
    );
    const result = selectPixels(two, train.classNames, {});
    assert.equal(result.classes.length, 10);
  });
});

function subsetFirst(ds: Dataset): Dataset {
  return subset(ds, 2000);
}
