/**
 * onepixel's protected copies as PyTorch users load them, with Debian's python3-torchvision: the
 * pickles through the CIFAR10/CIFAR100 subclass that skips the md5 checks (the one the docs give),
 * the same pickles the way Keras reads them, and the PNG folders through plain ImageFolder, whose
 * class indices must equal onepixel's labels, for 10, 12 and 100 classes. Every image and label is
 * compared with the same protection written in a binary format (CIFAR binary, or .npy) and parsed
 * by numpy.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import type { OutputFormat } from '../src/data/formats.js';
import { writeNpy } from '../src/data/npy.js';
import { readCifar10 } from '../src/data/cifar.js';
import { readCifar10Python, writeCifar10Python } from '../src/data/cifar-python.js';
import { protect, type ProtectOptions } from '../src/protect/job.js';
import { SUBCLASSES } from './torchvision-subclasses.js';
import {
  CIFAR_RECORD,
  PYTHON,
  cifarClassNames,
  cifarDataset,
  cifarRecords,
  runPython,
  splits,
  tempDirs,
} from './helpers.js';

const newDir = tempDirs('torchvision');

function noTorchvision(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import torchvision, numpy, PIL'], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    return `${PYTHON} cannot import torchvision (apt-get install python3-torchvision)`;
  return false;
}
const SKIP = noTorchvision();

const CHECK = `${SUBCLASSES}
import json, os, pickle, sys
import numpy as np
from torchvision.datasets import ImageFolder

a = json.loads(sys.argv[1])
out = {}

def binary(paths, label_bytes):
    rec = np.concatenate([np.fromfile(p, np.uint8) for p in paths]).reshape(-1, label_bytes + 3072)
    return rec[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), rec[:, :label_bytes]

def same(ds, images, labels, key):
    assert len(ds) == len(labels), (key, len(ds), len(labels))
    for i in range(len(ds)):
        img, y = ds[i]
        assert np.array_equal(np.asarray(img), images[i]), (key, 'image', i)
        assert y == labels[i], (key, 'label', i, y, labels[i])
    out[key] = len(ds)

def folder(root, images, labels, names, key):
    ds = ImageFolder(root)
    folders = sorted(os.listdir(root))
    assert ds.classes == folders
    assert [c.split('_', 1)[1] for c in ds.classes] == names, (key, ds.classes)
    assert all(ds.class_to_idx[f] == int(f.split('_')[0]) for f in folders)
    seen = set()
    for p, y in ds.samples:
        i = int(os.path.splitext(os.path.basename(p))[0])
        assert np.array_equal(np.asarray(ds.loader(p)), images[i]), (key, 'image', i)
        assert y == labels[i], (key, 'label', i)
        seen.add(i)
    assert seen == set(range(len(labels))), key
    out[key] = len(ds.samples)

# CIFAR-10: the pickles through the subclass, and as Keras reads them, against the binary copy.
b = a['c10bin']
train = binary([f'{b}/data_batch_{i}.bin' for i in range(1, 6)], 1)
test = binary([f'{b}/test_batch.bin'], 1)
names = [l.strip() for l in open(f'{b}/batches.meta.txt') if l.strip()]
ds = ProtectedCIFAR10(a['c10py'], train=True)
assert ds.classes == names, ds.classes
same(ds, train[0], train[1][:, 0], 'c10_train')
same(ProtectedCIFAR10(a['c10py'], train=False), test[0], test[1][:, 0], 'c10_test')
keras = []
for f in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
    d = pickle.load(open(f"{a['c10py']}/{f}", 'rb'), encoding='bytes')
    d = {k.decode('utf8'): v for k, v in d.items()}
    keras.append((d['data'].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), d['labels']))
x = np.concatenate([k[0] for k in keras])
y = sum((k[1] for k in keras), [])
assert np.array_equal(x, np.concatenate([train[0], test[0]]))
assert y == list(np.concatenate([train[1][:, 0], test[1][:, 0]]))
out['c10_keras'] = len(y)

# The PNG copy of the same protection through plain ImageFolder.
folder(f"{a['c10png']}/train", train[0], train[1][:, 0], names, 'png10_train')
folder(f"{a['c10png']}/test", test[0], test[1][:, 0], names, 'png10_test')

# 12 classes (folder names 00_ … 11_) against the .npy copy of the same protection.
for split in ('train', 'test'):
    x = np.load(f"{a['n12npy']}/x_{split}.npy")
    y = np.load(f"{a['n12npy']}/y_{split}.npy")
    assert list(y) == [i % 12 for i in range(len(y))]
    folder(f"{a['n12png']}/{split}", x, y, a['names12'], f'png12_{split}')

# CIFAR-100: fine labels through the subclass, coarse labels from the pickle.
b = a['c100bin']
for split, f in (('train', 'train'), ('test', 'test')):
    x, l = binary([f'{b}/{f}.bin'], 2)
    ds = ProtectedCIFAR100(a['c100py'], train=split == 'train')
    assert ds.classes == a['names100']
    same(ds, x, l[:, 1], f'c100_{split}')
    d = pickle.load(open(f"{a['c100py']}/{f}", 'rb'), encoding='latin1')
    assert d['coarse_labels'] == list(l[:, 0])
print(json.dumps(out))
`;

async function protectTo(o: Omit<ProtectOptions, 'out' | 'format'>, format: OutputFormat) {
  const out = path.join(await newDir(), 'out');
  await protect({ ...o, out, format });
  return out;
}

describe('protected copies in torchvision', { skip: SKIP }, () => {
  const args: Record<string, unknown> = {};
  before(async () => {
    // CIFAR-10: 60 real training records from each batch, 200 test records.
    const c10 = await newDir();
    for (let i = 1; i <= 5; i++)
      await writeFile(
        path.join(c10, `data_batch_${i}.bin`),
        await cifarRecords(`data_batch_${i}.bin`, 60),
      );
    await writeFile(path.join(c10, 'test_batch.bin'), await cifarRecords('test_batch.bin', 200));
    const names = await cifarClassNames();
    await writeFile(path.join(c10, 'batches.meta.txt'), names.join('\n') + '\n');
    const c10opts = { dataset: 'cifar10', dataDir: c10 } as const;
    args.c10src = c10;
    args.c10py = await protectTo(c10opts, 'cifar-python');
    args.c10bin = await protectTo(c10opts, 'cifar');
    args.c10png = await protectTo(c10opts, 'png');

    // 12 classes whose names sort in another order than their labels.
    const names12 = 'zebra yak wolf vole urchin toad seal rat quail puma otter newt'.split(' ');
    const relabel = (ds: Dataset): Dataset => ({
      ...ds,
      labels: Int32Array.from(ds.labels, (_, i) => i % 12),
      classNames: names12,
    });
    const raw = await cifarRecords('data_batch_3.bin', 420);
    const n12 = await newDir();
    await writeNpy(
      n12,
      splits(
        relabel(cifarDataset(raw.subarray(0, 300 * CIFAR_RECORD), names)),
        relabel(cifarDataset(raw.subarray(300 * CIFAR_RECORD), names)),
      ),
    );
    args.n12npy = await protectTo({ dataset: 'npy', dataDir: n12 }, 'npy');
    args.n12png = await protectTo({ dataset: 'npy', dataDir: n12 }, 'png');
    args.names12 = names12;

    // CIFAR-100 binary layout (coarse byte, fine byte, pixels) from real CIFAR-10 pixels.
    const c100 = await newDir();
    const names100 = Array.from({ length: 100 }, (_, i) => `fine${i}`);
    for (const [file, n, from] of [
      ['train.bin', 300, 0],
      ['test.bin', 100, 300],
    ] as const) {
      const recs = await cifarRecords('data_batch_4.bin', n, from);
      const out = Buffer.alloc(n * (CIFAR_RECORD + 1));
      for (let i = 0; i < n; i++) {
        const fine = (i * 7) % 100;
        out[i * (CIFAR_RECORD + 1)] = Math.floor(fine / 5);
        out[i * (CIFAR_RECORD + 1) + 1] = fine;
        recs.copy(out, i * (CIFAR_RECORD + 1) + 2, i * CIFAR_RECORD + 1, (i + 1) * CIFAR_RECORD);
      }
      await writeFile(path.join(c100, file), out);
    }
    await writeFile(path.join(c100, 'fine_label_names.txt'), names100.join('\n') + '\n');
    await writeFile(
      path.join(c100, 'coarse_label_names.txt'),
      Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n') + '\n',
    );
    args.c100py = await protectTo({ dataset: 'cifar100', dataDir: c100 }, 'cifar-python');
    args.c100bin = await protectTo({ dataset: 'cifar100', dataDir: c100 }, 'cifar');
    args.names100 = names100;
  });

  it('loads every image and label as the binary copies hold them', () => {
    const counts = JSON.parse(runPython(CHECK, [JSON.stringify(args)])) as Record<string, number>;
    assert.deepEqual(counts, {
      c10_train: 300,
      c10_test: 200,
      c10_keras: 500,
      png10_train: 300,
      png10_test: 200,
      png12_train: 300,
      png12_test: 120,
      c100_train: 300,
      c100_test: 100,
    });
  });

  it('onepixel reads its python copy back as the binary one, and protects it alike', async () => {
    const py = await readCifar10Python(args.c10py as string);
    const bin = await readCifar10(args.c10bin as string);
    for (const s of ['train', 'test'] as const) {
      const a = py[s] as Dataset;
      const b = bin[s] as Dataset;
      assert.ok(Buffer.from(a.images).equals(Buffer.from(b.images)), s);
      assert.deepEqual([...a.labels], [...b.labels], s);
    }
    // The unprotected source in the python layout as input: the same protected binary files.
    const src = await newDir();
    const orig = await readCifar10(args.c10src as string);
    await writeCifar10Python(src, splits(orig.train, orig.test));
    const again = path.join(await newDir(), 'again');
    const m = await protect({
      dataset: 'cifar10-python',
      dataDir: src,
      out: again,
      format: 'cifar',
    });
    assert.equal(m.source.dataset, 'cifar10-python');
    for (const f of ['data_batch_1', 'data_batch_5', 'test_batch'])
      assert.ok(
        (await readFile(path.join(again, `${f}.bin`))).equals(
          await readFile(path.join(args.c10bin as string, `${f}.bin`)),
        ),
        f,
      );
  });
});
