/**
 * The CIFAR python version (pickles): the writer against the official batches.meta (torchvision's
 * md5) and against Python's own unpickler, onepixel's reader on real CIFAR-10 records decoded by
 * hand, and the reader's one-line refusals naming the file and the key.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { CIFAR10_CLASSES } from '../src/data/cifar.js';
import {
  cifar10Meta,
  readCifar10Python,
  readCifar100Python,
  writeCifar10Python,
  writeCifar100Python,
} from '../src/data/cifar-python.js';
import type { Dataset } from '../src/data/dataset.js';
import { NdArray, PickleWriter, PyBytes, pickleDict, unpickle } from '../src/data/pickle.js';
import {
  assertSameDataset,
  cifarClassNames,
  cifarDataset,
  cifarRecords,
  noNumpy,
  runPython,
  splits,
  tempDirs,
} from './helpers.js';

const newDir = tempDirs('cifar-python');
const NO_NUMPY = noNumpy();

/** torchvision's CIFAR10.meta md5: the official batches.meta of cifar-10-python.tar.gz. */
const OFFICIAL_META_MD5 = '5ff9c542aee3614f3951f8cda6e48888';

describe('pickle writer', () => {
  it('writes the official CIFAR-10 batches.meta byte for byte', () => {
    const md5 = createHash('md5').update(cifar10Meta(10000, CIFAR10_CLASSES)).digest('hex');
    assert.equal(md5, OFFICIAL_META_MD5);
  });

  it(
    'Python loads what it writes, with encoding latin1 and bytes; unpickle reads it back',
    {
      skip: NO_NUMPY,
    },
    async () => {
      const dir = await newDir();
      const file = path.join(dir, 'p.pkl');
      const ints = Array.from({ length: 2345 }, (_, i) => (i * 7919) % 70001);
      ints.push(-5, 2147483647, -2147483648);
      const names = Array.from({ length: 300 }, (_, i) => `name ${i}`);
      names.push('café ☕', 'x'.repeat(300), '');
      const data = Uint8Array.from({ length: 15 }, (_, i) => (i * 37) % 256);
      const p = new PickleWriter().dictStart();
      p.str('data').arrayStart([3, 5]);
      const head = p.take();
      p.arrayEnd().str('ints').intList(ints).str('names').strList(names);
      p.str('one').intList([7]).str('none').intList([]).str('label').str('batch 1').dictEnd();
      const bytes = Buffer.concat([head, data, p.take()]);
      await writeFile(file, bytes);
      const py = runPython(
        `import pickle, json, sys
out = {}
for enc in ('latin1', 'bytes'):
    d = pickle.load(open(sys.argv[1], 'rb'), encoding=enc)
    k = lambda s: s.decode('utf8') if isinstance(s, bytes) else s
    d = {k(a): b for a, b in d.items()}
    a = d['data']
    out[enc] = dict(keys=sorted(d), dtype=str(a.dtype), shape=list(a.shape), c=bool(a.flags['C_CONTIGUOUS']),
        data=a.ravel().tolist(), ints=d['ints'], names=[k(s) for s in d['names']], one=d['one'],
        none=d['none'], label=k(d['label']), keytype=type(next(iter(pickle.load(open(sys.argv[1], 'rb'), encoding=enc)))).__name__)
print(json.dumps(out))`,
        [file],
      );
      const got = JSON.parse(py) as Record<string, Record<string, unknown>>;
      for (const [enc, keytype] of [
        ['latin1', 'str'],
        ['bytes', 'bytes'],
      ]) {
        const g = got[enc];
        assert.equal(g.keytype, keytype, enc);
        assert.deepEqual(g.keys, ['data', 'ints', 'label', 'names', 'none', 'one']);
        assert.deepEqual([g.dtype, g.shape, g.c], ['uint8', [3, 5], true]);
        assert.deepEqual(g.data, [...data]);
        assert.deepEqual(g.ints, ints);
        assert.deepEqual(g.one, [7]);
        assert.deepEqual(g.none, []);
        assert.equal(g.label, 'batch 1');
      }
      // A Python 2 str holds bytes: 'café' is written as unicode so both conventions read it.
      assert.deepEqual(got.latin1.names, names);
      assert.deepEqual(got.bytes.names, names);
      const back = unpickle(file, bytes) as Map<string, unknown>;
      const arr = back.get('data') as NdArray;
      assert.deepEqual([arr.shape, [...(arr.data as Uint8Array)]], [[3, 5], [...data]]);
      assert.deepEqual(back.get('ints'), ints);
      const text = (back.get('names') as unknown[]).map((s) =>
        s instanceof PyBytes ? s.text() : s,
      );
      assert.deepEqual(text, names);
    },
  );
});

describe('CIFAR-10 python: write and read back real records', () => {
  let train: Dataset;
  let test: Dataset;
  let dir: string;
  before(async () => {
    const names = await cifarClassNames();
    train = cifarDataset(await cifarRecords('data_batch_1.bin', 103), names);
    test = cifarDataset(await cifarRecords('test_batch.bin', 21), names);
    dir = await newDir();
    await writeCifar10Python(dir, splits(train, test));
  });

  it('reads back the same pixels, labels and names (pixels decoded here by hand)', async () => {
    const r = await readCifar10Python(dir);
    assert.equal(r.format, 'cifar10-python');
    assertSameDataset(r.train as Dataset, train, 'train');
    assertSameDataset(r.test as Dataset, test, 'test');
    // 103 images over 5 files as evenly as possible: 20, 21, 20, 21, 21.
    const sizes = [];
    for (let b = 1; b <= 5; b++) {
      const d = unpickle('x', await readFile(path.join(dir, `data_batch_${b}`))) as Map<
        string,
        unknown
      >;
      sizes.push((d.get('labels') as number[]).length);
    }
    assert.deepEqual(sizes, [20, 21, 20, 21, 21]);
    assert.deepEqual(r.files.map((f) => path.basename(f.path)).sort(), [
      'batches.meta',
      'data_batch_1',
      'data_batch_2',
      'data_batch_3',
      'data_batch_4',
      'data_batch_5',
      'test_batch',
    ]);
  });

  /** A copy of the written folder with one file replaced. */
  async function withFile(name: string, bytes: Uint8Array): Promise<string> {
    const d = await newDir();
    for (const f of ['batches.meta', 'test_batch', 1, 2, 3, 4, 5].map((x) =>
      typeof x === 'number' ? `data_batch_${x}` : x,
    ))
      await writeFile(path.join(d, f), await readFile(path.join(dir, f)));
    await writeFile(path.join(d, name), bytes);
    return d;
  }

  async function refuses(name: string, bytes: Uint8Array, message: RegExp): Promise<void> {
    const d = await withFile(name, bytes);
    await assert.rejects(readCifar10Python(d), (e: Error) => {
      assert.equal(e.name, 'OnepixelError');
      assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
      assert.ok(e.message.startsWith(path.join(d, name) + ':'), e.message);
      assert.match(e.message, message);
      return true;
    });
  }

  /** A batch of `n` zero images with the given extra/changed entries. */
  function batch(n: number, edit: (p: PickleWriter) => void, keys = ['labels', 'batch_label']) {
    const p = new PickleWriter().dictStart();
    p.str('data').arrayStart([n, 3072]);
    const head = p.take();
    p.arrayEnd();
    if (keys.includes('labels')) p.str('labels').intList(new Array<number>(n).fill(1));
    if (keys.includes('batch_label')) p.str('batch_label').str('b');
    edit(p);
    return Buffer.concat([head, new Uint8Array(n * 3072), p.dictEnd().take()]);
  }
  const files = (p: PickleWriter) => p.str('filenames').strList(['a.png', 'b.png']);

  it('accepts a hand-made batch with every key', async () => {
    const d = await withFile('data_batch_3', batch(2, files));
    const r = await readCifar10Python(d);
    assert.equal((r.train as Dataset).labels.length, 103 - 20 + 2);
  });

  it('refuses a truncated file', async () => {
    const good = await readFile(path.join(dir, 'data_batch_2'));
    await refuses('data_batch_2', good.subarray(0, good.length - 100), /truncated/);
  });

  it('refuses a missing key, an unknown key, a wrong label, a wrong count', async () => {
    await refuses(
      'data_batch_4',
      batch(2, () => undefined),
      /key 'filenames' is missing/,
    );
    await refuses(
      'data_batch_4',
      batch(2, (p) => files(p).str('extra').int(1)),
      /key 'extra' is not one of the format's keys/,
    );
    await refuses(
      'data_batch_4',
      batch(2, (p) => files(p).str('labels').intList([3, 10]), ['batch_label']),
      /key 'labels' entry 1 is 10, expected an integer 0\.\.9/,
    );
    await refuses(
      'data_batch_4',
      batch(2, (p) => files(p).str('labels').intList([3]), ['batch_label']),
      /key 'labels' has 1 entries, expected 2/,
    );
    await refuses(
      'batches.meta',
      pickleDict([
        ['num_cases_per_batch', 1],
        ['label_names', ['a', 'b']],
        ['num_vis', 3072],
      ]),
      /key 'label_names' has 2 names, expected 10/,
    );
  });

  it(
    'refuses pickles Python 3 writes (other opcodes, _codecs for bytes)',
    { skip: NO_NUMPY },
    async () => {
      const d = await newDir();
      runPython(
        `import pickle, numpy as np, sys
b = {'data': np.zeros((2, 3072), np.uint8), 'labels': [1, 2], 'batch_label': 'b', 'filenames': ['a', 'b']}
for p in (2, 4):
    pickle.dump(b, open(sys.argv[1] + '/p%d' % p, 'wb'), protocol=p)`,
        [d],
      );
      await refuses('data_batch_1', await readFile(path.join(d, 'p4')), /not a protocol-2 pickle/);
      await refuses('data_batch_1', await readFile(path.join(d, 'p2')), /global _codecs\.encode/);
    },
  );

  it('says where the files are when --data-dir is the archive parent or the binary version', async () => {
    const parent = await newDir();
    await mkdir(path.join(parent, 'cifar-10-batches-py'));
    await writeFile(path.join(parent, 'cifar-10-batches-py', 'data_batch_1'), '');
    await assert.rejects(readCifar10Python(parent), /pass that as --data-dir/);
    await assert.rejects(
      readCifar100Python(parent),
      (e: Error) =>
        e.message ===
        `${path.join(parent, 'train')}: not found (CIFAR-100 python version: train, meta)`,
    );
    await assert.rejects(
      readCifar10Python(path.resolve('../shared/data/cifar-10-batches-bin')),
      /holds the binary version: use --dataset cifar10$/,
    );
  });
});

describe('CIFAR-100 python', () => {
  it('keeps fine and coarse labels and both name lists', async () => {
    const names = await cifarClassNames();
    const base = cifarDataset(await cifarRecords('data_batch_2.bin', 50), names);
    const fine = Array.from({ length: 100 }, (_, i) => `fine ${i}`);
    const coarse = Array.from({ length: 20 }, (_, i) => `coarse ${i}`);
    const ds: Dataset = {
      ...base,
      labels: Int32Array.from(base.labels, (l, i) => (l * 10 + i) % 100),
      classNames: fine,
      coarseClassNames: coarse,
    };
    ds.coarseLabels = Uint8Array.from(ds.labels, (l) => Math.floor(l / 5));
    const dir = await newDir();
    await writeCifar100Python(dir, splits(ds, null));
    const r = await readCifar100Python(dir);
    assert.equal(r.test, null);
    const t = r.train as Dataset;
    assertSameDataset(t, ds, 'train');
    assert.deepEqual([...(t.coarseLabels as Uint8Array)], [...ds.coarseLabels]);
    assert.deepEqual(t.coarseClassNames, coarse);
  });
});
