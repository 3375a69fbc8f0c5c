/**
 * Sharded protect (src/protect/plan.ts, shard-write.ts, data/parts.ts): statistics of N shards,
 * merged, then N writing shards into one folder, must give the very bytes unsharded protect
 * writes, for every output format and every input kind, whatever order the shards finish in.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { writeCifar10, writeCifar100 } from '../src/data/cifar.js';
import { writeCifar100Python } from '../src/data/cifar-python.js';
import type { DatasetKind, OutputFormat } from '../src/data/formats.js';
import { writePngFolder } from '../src/data/folder.js';
import { writeIdx } from '../src/data/idx.js';
import { writeNpy } from '../src/data/npy.js';
import { OnepixelError } from '../src/errors.js';
import { mergePlan, shardStats } from '../src/protect/plan.js';
import { SHARDS_DIR, writeShard } from '../src/protect/shard-write.js';
import { protect } from '../src/protect/job.js';
import { parseShard, shardRange, shardsOf } from '../src/shard.js';
import type { Objective } from '../src/shortcut/search.js';
import { datasetStats } from '../src/shortcut/stats.js';
import { mergeStats, statsFromJson, statsToJson } from '../src/shortcut/stats-file.js';
import {
  cifarClassNames,
  cifarDataset,
  cifarRecords,
  fashionDataset,
  FASHION_NAMES,
  headOf,
  NO_FASHION,
  runCli,
  splits,
  tempDirs,
} from './helpers.js';

const tmp = tempDirs('shard');

/** Every file under `dir` (relative path → bytes), sorted. */
async function tree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string) => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(path.relative(dir, p), await readFile(p));
    }
  };
  await walk(dir);
  return out;
}

async function assertSameTree(actual: string, expected: string): Promise<number> {
  const a = await tree(actual);
  const e = await tree(expected);
  assert.deepEqual([...a.keys()], [...e.keys()], 'the same files');
  for (const [k, v] of e) assert.ok(v.equals(a.get(k) as Buffer), `${k}: the same bytes`);
  // Empty class folders count too (PNG output creates every one).
  const dirs = async (d: string) =>
    (await readdir(d, { recursive: true, withFileTypes: true }))
      .filter((x) => x.isDirectory())
      .map((x) => path.relative(d, path.join(x.parentPath, x.name)))
      .sort();
  assert.deepEqual(await dirs(actual), await dirs(expected));
  return e.size;
}

async function cifarSubset(nTrain: number, nTest: number): Promise<[Dataset, Dataset]> {
  const names = await cifarClassNames();
  return [
    cifarDataset(await cifarRecords('data_batch_1.bin', nTrain), names),
    cifarDataset(await cifarRecords('test_batch.bin', nTest), names),
  ];
}

/** Random 32×32×3 images of 100 classes with coarse labels (CIFAR-100's layout). */
function cifar100Like(n: number, seed: number): Dataset {
  let a = seed;
  const rnd = () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0) >>> 8) & 0xff;
  const images = new Uint8Array(n * 3072).map(rnd);
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 37) % 100);
  return {
    height: 32,
    width: 32,
    channels: 3,
    images,
    labels,
    classNames: Array.from({ length: 100 }, (_, i) => `fine${i}`),
    coarseLabels: Uint8Array.from(labels, (l) => l % 20),
    coarseClassNames: Array.from({ length: 20 }, (_, i) => `coarse${i}`),
  };
}

interface Case {
  name: string;
  kind: DatasetKind;
  make: (dir: string) => Promise<void>;
  format?: OutputFormat;
  shards: number;
  /** The order the writing shards run in (the last one completes the folder). */
  order: number[];
  objective?: Objective;
  pixels?: number;
  skip?: string | false;
}

async function runSharded(c: Case, data: string, work: string): Promise<string> {
  const statsFiles: string[] = [];
  for (let i = c.shards - 1; i >= 0; i--) {
    const s = await shardStats({
      dataset: c.kind,
      dataDir: data,
      objective: c.objective ?? 'official',
      shard: { index: i, count: c.shards },
    });
    const file = path.join(work, `stats-${i}.json`);
    await writeFile(file, JSON.stringify(s));
    statsFiles.push(file);
  }
  const plan = await mergePlan(statsFiles, c.pixels ?? 1);
  const out = path.join(work, 'out');
  const finals: boolean[] = [];
  for (const i of c.order) {
    const r = await writeShard({
      planPath: 'plan',
      plan,
      dataDir: data,
      out,
      format: c.format,
      shard: { index: i, count: c.shards },
    });
    finals.push(r.finalized);
    if (finals.length < c.order.length) {
      // Not complete before the last shard: no manifest, the shards' folder still there.
      await assert.rejects(stat(path.join(out, 'manifest.json')));
      await stat(path.join(out, SHARDS_DIR));
    }
  }
  assert.deepEqual(finals, [...c.order.map(() => false).slice(1), true]);
  return out;
}

const cifar = (nTrain: number, nTest: number) => async (dir: string) => {
  const [train, test] = await cifarSubset(nTrain, nTest);
  await writeCifar10(dir, splits(train, test));
};

const CASES: Case[] = [
  { name: 'cifar10 → cifar', kind: 'cifar10', make: cifar(203, 20), shards: 3, order: [2, 0, 1] },
  {
    name: 'cifar10 → npy, paper objective, 2 pixels',
    kind: 'cifar10',
    make: cifar(150, 10),
    format: 'npy',
    shards: 4,
    order: [0, 1, 3, 2],
    objective: 'paper',
    pixels: 2,
  },
  {
    name: 'cifar100 → cifar (coarse labels)',
    kind: 'cifar100',
    make: async (dir) => {
      const d = cifar100Like(230, 7);
      await writeCifar100(dir, splits(d, headOf(cifar100Like(40, 9), 40)));
    },
    shards: 3,
    order: [1, 2, 0],
  },
  {
    name: 'cifar10 → cifar-python (pickled batches)',
    kind: 'cifar10',
    make: cifar(123, 15),
    format: 'cifar-python',
    shards: 4,
    order: [3, 1, 0, 2],
  },
  {
    name: 'cifar100-python → cifar-python (coarse labels, one batch)',
    kind: 'cifar100-python',
    make: async (dir) => {
      const d = cifar100Like(210, 3);
      await writeCifar100Python(dir, splits(d, cifar100Like(30, 5)));
    },
    shards: 3,
    order: [0, 2, 1],
  },
  {
    name: 'class folders without a test split → cifar-python (meta counts the first batch)',
    kind: 'folder',
    make: async (dir) => {
      const [train] = await cifarSubset(100, 1);
      await writePngFolder(dir, splits(train, null));
    },
    format: 'cifar-python',
    shards: 2,
    order: [1, 0],
  },
  {
    name: 'fashion-mnist → idx (gzipped)',
    kind: 'fashion-mnist',
    make: async (dir) => {
      const train = await fashionDataset('train', 300, FASHION_NAMES);
      const test = await fashionDataset('t10k', 30, FASHION_NAMES);
      await writeIdx(dir, splits(train, test));
    },
    shards: 3,
    order: [0, 2, 1],
    skip: NO_FASHION,
  },
  {
    name: 'npy without a test split → npy',
    kind: 'npy',
    make: async (dir) => {
      const [train] = await cifarSubset(120, 1);
      await writeNpy(dir, splits(train, null));
    },
    shards: 2,
    order: [1, 0],
  },
  {
    name: 'class folders → png (streamed; test split hashed by shards)',
    kind: 'folder',
    make: async (dir) => {
      const [train, test] = await cifarSubset(90, 60);
      await writePngFolder(dir, splits(train, test));
    },
    shards: 3,
    order: [2, 1, 0],
  },
  {
    name: 'class folders without a test split → cifar',
    kind: 'folder',
    make: async (dir) => {
      const [train] = await cifarSubset(100, 1);
      await writePngFolder(dir, splits(train, null));
      const { rename, rm } = await import('node:fs/promises');
      // A folder of class folders directly (no train/ level).
      for (const f of await readdir(path.join(dir, 'train')))
        await rename(path.join(dir, 'train', f), path.join(dir, f));
      await rm(path.join(dir, 'train'), { recursive: true });
    },
    format: 'cifar',
    shards: 2,
    order: [0, 1],
  },
];

describe('sharded protect equals unsharded protect, byte for byte', () => {
  for (const c of CASES) {
    it(c.name, { skip: c.skip }, async () => {
      const data = await tmp();
      await c.make(data);
      const single = path.join(await tmp(), 'out');
      await protect({
        dataset: c.kind,
        dataDir: data,
        out: single,
        format: c.format,
        objective: c.objective,
        pixels: c.pixels,
      });
      const sharded = await runSharded(c, data, await tmp());
      const files = await assertSameTree(sharded, single);
      assert.ok(files >= 3, `${files} files compared`);
    });
  }
});

describe('statistics files and their merge', () => {
  it('a saved, re-read and merged ClassStats equals one pass over all the images', async () => {
    const [train] = await cifarSubset(100, 1);
    const whole = datasetStats(train, true);
    const a = datasetStats(headOf(train, 37), true);
    const rest: Dataset = {
      ...train,
      images: train.images.slice(37 * 3072),
      labels: train.labels.slice(37),
    };
    const b = datasetStats(rest, true);
    const reread = (s: typeof a) => statsFromJson(JSON.parse(JSON.stringify(statsToJson(s))), 'x');
    const merged = mergeStats([
      { stats: reread(b), name: 'b' },
      { stats: reread(a), name: 'a' },
    ]);
    for (const k of [
      'height',
      'width',
      'channels',
      'classes',
      'counts',
      'sum',
      'sumSq',
      'cross',
    ] as const)
      assert.deepEqual(merged[k], whole[k], k);
    // A hand check of one sum: Σx of class 6 (frog), channel R, pixel (0,0).
    let s = 0;
    for (let i = 0; i < 100; i++) if (train.labels[i] === 6) s += train.images[i * 3072];
    assert.equal(merged.sum[6 * 3072], s);
  });

  it('refuses inexact sums, overlapping, missing and foreign shards', async () => {
    const data = await tmp();
    await cifar(40, 5)(data);
    const work = await tmp();
    const files: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = path.join(work, `s${i}.json`);
      await writeFile(
        f,
        JSON.stringify(
          await shardStats({
            dataset: 'cifar10',
            dataDir: data,
            objective: 'official',
            shard: { index: i, count: 3 },
          }),
        ),
      );
      files.push(f);
    }
    await assert.rejects(mergePlan([files[0], files[2]], 1), /shard 1\/3 missing/);
    await assert.rejects(mergePlan([files[0], files[1], files[1], files[2]], 1), /given twice/);
    const other = await tmp();
    await cifar(41, 5)(other);
    const f = path.join(work, 'other.json');
    await writeFile(
      f,
      JSON.stringify(
        await shardStats({
          dataset: 'cifar10',
          dataDir: other,
          objective: 'official',
          shard: { index: 1, count: 3 },
        }),
      ),
    );
    await assert.rejects(mergePlan([files[0], f, files[2]], 1), /fingerprint/);
    const j = JSON.parse(await readFile(files[1], 'utf8'));
    j.stats.sum[5] = 2 ** 53;
    await writeFile(files[1], JSON.stringify(j));
    await assert.rejects(mergePlan(files, 1), (e: unknown) => {
      assert.ok(e instanceof OnepixelError);
      return /sum\[5\]: 9007199254740992 is not an exact/.test(e.message);
    });
  });

  it('the plan of merged shards is the pixels unsharded protect chooses', async () => {
    const data = await tmp();
    await cifar(80, 5)(data);
    const single = path.join(await tmp(), 'o');
    const m = await protect({ dataset: 'cifar10', dataDir: data, out: single });
    const work = await tmp();
    const files = [];
    for (let i = 0; i < 5; i++) {
      const f = path.join(work, `${i}.json`);
      const s = await shardStats({
        dataset: 'cifar10',
        dataDir: data,
        objective: 'official',
        shard: { index: i, count: 5 },
      });
      assert.deepEqual(s.records, { ...shardRange(80, { index: i, count: 5 }), total: 80 });
      await writeFile(f, JSON.stringify(s));
      files.push(f);
    }
    const plan = await mergePlan(files, 1);
    assert.deepEqual(plan.classes, m.classes);
    assert.deepEqual(plan.sourceFiles, m.source.files);
  });
});

describe('the shared output folder', () => {
  it('refuses a folder that is not a sharded output, and shards of another plan', async () => {
    const data = await tmp();
    await cifar(100, 5)(data);
    const work = await tmp();
    const stats = path.join(work, 's.json');
    await writeFile(
      stats,
      JSON.stringify(
        await shardStats({
          dataset: 'cifar10',
          dataDir: data,
          objective: 'official',
          shard: { index: 0, count: 1 },
        }),
      ),
    );
    const plan = await mergePlan([stats], 1);
    const foreign = await tmp();
    await writeFile(path.join(foreign, 'keep.txt'), 'mine');
    await assert.rejects(
      writeShard({ planPath: 'p', plan, dataDir: data, out: foreign, shard: parseShard('0/2') }),
      /not a sharded protect's output/,
    );
    assert.equal(await readFile(path.join(foreign, 'keep.txt'), 'utf8'), 'mine');
    const out = path.join(work, 'out');
    await writeShard({ planPath: 'p', plan, dataDir: data, out, shard: parseShard('0/2') });
    await assert.rejects(
      writeShard({ planPath: 'p', plan, dataDir: data, out, shard: parseShard('1/3') }),
      /shards of another job/,
    );
    await writeShard({ planPath: 'p', plan, dataDir: data, out, shard: parseShard('1/2') });
    await assert.rejects(
      writeShard({ planPath: 'p', plan, dataDir: data, out, shard: parseShard('1/2') }),
      /already exists and is complete/,
    );
  });
});

describe('onepixel protect: the sharded steps', () => {
  it('runs the three steps from the command line and refuses flags a step does not read', async () => {
    const data = await tmp();
    await cifar(100, 10)(data);
    const work = await tmp();
    const base = ['protect', '--dataset', 'cifar10', '--data-dir', data];
    for (const i of [0, 1]) {
      const r = await runCli([
        ...base,
        '--shard',
        `${i}/2`,
        '--stats-only',
        '--out',
        `${work}/s/${i}.json`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(
          `shard ${i}/2: statistics of training images ${i * 50}…${i * 50 + 49} \\(50 of 100\\)`,
        ),
      );
    }
    const again = await runCli([
      ...base,
      '--shard',
      '0/2',
      '--stats-only',
      '--out',
      `${work}/s/0.json`,
    ]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists \(--out\); pass --force/);
    const m = await runCli([
      'protect',
      '--merge-stats',
      `${work}/s/0.json`,
      `${work}/s/1.json`,
      '--out',
      `${work}/plan.json`,
    ]);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stdout, /from the exact statistics of 2 shards, 100 training images/);
    const refusals: Array<[string[], RegExp]> = [
      [[...base, '--shard', '0/2', '--out', `${work}/x`], /--shard I\/N needs --stats-only/],
      [
        [
          'protect',
          '--merge-stats',
          `${work}/s/0.json`,
          '--dataset',
          'cifar10',
          '--out',
          `${work}/p`,
        ],
        /--dataset does not apply with --merge-stats/,
      ],
      [
        [
          ...base,
          '--plan',
          `${work}/plan.json`,
          '--shard',
          '0/2',
          '--objective',
          'paper',
          '--out',
          `${work}/o`,
        ],
        /--objective does not apply with --plan/,
      ],
      [[...base, '--plan', `${work}/plan.json`, '--out', `${work}/o`], /--plan needs --shard/],
      [
        [
          ...base,
          '--method',
          'random-noise',
          '--shard',
          '0/2',
          '--stats-only',
          '--out',
          `${work}/x`,
        ],
        /is for --method ops, not random-noise/,
      ],
      [
        [
          'protect',
          '--dataset',
          'npy',
          '--data-dir',
          data,
          '--plan',
          `${work}/plan.json`,
          '--shard',
          '0/1',
          '--out',
          `${work}/o`,
        ],
        /--dataset npy, but the plan .* is of a cifar10 dataset/,
      ],
      [
        [...base, '--shard', '2/2', '--stats-only', '--out', `${work}/x`],
        /--shard 2\/2: expected I\/N with 0 ≤ I < N/,
      ],
    ];
    for (const [args, re] of refusals) {
      const r = await runCli(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, re);
    }
    for (const i of [1, 0]) {
      const r = await runCli([
        ...base,
        '--plan',
        `${work}/plan.json`,
        '--shard',
        `${i}/2`,
        '--out',
        `${work}/out`,
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    const single = await runCli([...base, '--out', `${work}/single`]);
    assert.equal(single.code, 0, single.stderr);
    await assertSameTree(`${work}/out`, `${work}/single`);
  });
});

describe('shards', () => {
  it('parses I/N and refuses the rest', () => {
    assert.deepEqual(parseShard('2/5'), { index: 2, count: 5 });
    for (const bad of ['5/5', '1/0', '-1/3', '1', 'a/b', '1/2/3'])
      assert.throws(() => parseShard(bad), /--shard .*expected I\/N/);
  });

  it('ranges cover every record once; keys go to exactly one shard', () => {
    for (const [n, N] of [
      [10, 3],
      [2, 5],
      [50000, 7],
    ]) {
      let next = 0;
      for (let i = 0; i < N; i++) {
        const r = shardRange(n, { index: i, count: N });
        assert.equal(r.first, next);
        next += r.count;
      }
      assert.equal(next, n);
    }
    const keys = ['b', 'a', 'd', 'c', 'e'];
    const of = shardsOf(keys, 2);
    assert.deepEqual(
      keys.map((k) => of.get(k)),
      [1, 0, 1, 0, 0],
    );
  });
});
