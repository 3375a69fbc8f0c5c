/**
 * `onepixel holdout`: a CIFAR-10 folder whose test set is one held-out training file. Checked
 * byte for byte by Python (hashlib, plain file reads), not by onepixel's own reader; then that
 * protect reads the split as CIFAR-10 and leaves its test set exact; then refusals.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  CIFAR_DIR,
  CIFAR_TRAIN_FILES,
  cifarRecords,
  runCli,
  runPython,
  tempDirs,
} from './helpers.js';

const tmp = tempDirs('holdout');
const N = 30; // records per source file
const META = 'batches.meta.txt';

/** A small CIFAR-10 folder: records [100 i, 100 i + N) of each real training file i. */
async function source(): Promise<string> {
  const dir = await tmp();
  for (const [i, f] of CIFAR_TRAIN_FILES.entries())
    await writeFile(path.join(dir, f), await cifarRecords(f, N, 100 * i));
  await writeFile(path.join(dir, 'batches.meta.txt'), await readFile(path.join(CIFAR_DIR, META)));
  return dir;
}

// Python's view: the split's files, what they should hold, and holdout.json's hashes.
const CHECK = `
import hashlib, json, os, sys
src, out, test = sys.argv[1:4]
R = 3073
files = ['data_batch_%d.bin' % i for i in range(1, 6)]
read = lambda p: open(p, 'rb').read()
train = b''.join(read(os.path.join(src, f)) for f in files if f != test)
got = b''.join(read(os.path.join(out, f)) for f in files)
sizes = [os.path.getsize(os.path.join(out, f)) // R for f in files]
info = json.load(open(os.path.join(out, 'holdout.json')))
print(json.dumps({
  'trainSame': got == train,
  'testSame': read(os.path.join(out, 'test_batch.bin')) == read(os.path.join(src, test)),
  'sizes': sizes,
  'trainFiles': [t['file'] for t in info['train']],
  'hashesOk': all(t['sha256'] == hashlib.sha256(read(os.path.join(src, t['file']))).hexdigest()
                  for t in info['train'] + [info['test']]),
  'testFile': info['test']['file'],
  'meta': read(os.path.join(out, 'batches.meta.txt')) == read(os.path.join(src, 'batches.meta.txt')),
}))
`;

describe('onepixel holdout', () => {
  for (const test of ['data_batch_5.bin', 'data_batch_2.bin']) {
    it(`--test ${test}: the other four files' records in order as training, ${test} unchanged as test_batch.bin`, async () => {
      const src = await source();
      const out = path.join(await tmp(), 'split');
      const r = await runCli(['holdout', '--data', src, '--test', test, '--out', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout.trim(),
        `${out}: ${4 * N} training images (${CIFAR_TRAIN_FILES.filter((f) => f !== test).join(', ')}), ${N} test images (${test})`,
      );
      const py = JSON.parse(runPython(CHECK, [src, out, test])) as Record<string, unknown>;
      assert.deepEqual(py, {
        trainSame: true,
        testSame: true,
        sizes: [24, 24, 24, 24, 24], // 120 records spread evenly over five files
        trainFiles: CIFAR_TRAIN_FILES.filter((f) => f !== test),
        hashesOk: true,
        testFile: test,
        meta: true,
      });
    });
  }

  it('protect reads the split as CIFAR-10: the 120 training images are protected, the held-out test set is copied exactly', async () => {
    const src = await source();
    const work = await tmp();
    const split = path.join(work, 'split');
    assert.equal((await runCli(['holdout', '--data', src, '--out', split])).code, 0);
    const ops = path.join(work, 'ops');
    const r = await runCli(['protect', '--dataset', 'cifar10', '--data-dir', split, '--out', ops]);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(await readFile(path.join(ops, 'manifest.json'), 'utf8')) as {
      output: { format: string; train: number; test: number };
    };
    assert.deepEqual(m.output, { format: 'cifar', train: 4 * N, test: N });
    assert.deepEqual(
      await readFile(path.join(ops, 'test_batch.bin')),
      await readFile(path.join(src, 'data_batch_5.bin')),
    );
  });

  it('refuses in one line, writing nothing: a --test that is no training file, a damaged input, an existing --out', async () => {
    const src = await source();
    const work = await tmp();
    const out = path.join(work, 'split');
    const bad = await runCli(['holdout', '--data', src, '--test', 'test_batch.bin', '--out', out]);
    assert.equal(bad.code, 1);
    assert.equal(
      bad.stderr,
      'onepixel: error: --test test_batch.bin: not a CIFAR-10 training file; one of ' +
        `${CIFAR_TRAIN_FILES.join(', ')}\n`,
    );
    assert.equal(existsSync(out), false);

    const damaged = await tmp();
    for (const f of CIFAR_TRAIN_FILES)
      await writeFile(path.join(damaged, f), await readFile(path.join(src, f)));
    const cut = path.join(damaged, 'data_batch_3.bin');
    await writeFile(cut, (await readFile(cut)).subarray(0, 3073 * 2 + 100));
    const d = await runCli(['holdout', '--data', damaged, '--out', out]);
    assert.equal(d.code, 1);
    assert.match(d.stderr, /^onepixel: error: [^\n]*data_batch_3\.bin[^\n]*\n$/);
    assert.equal(existsSync(out), false);
    assert.deepEqual((await readdir(work)).sort(), [], 'no temporary sibling left');

    await mkdir(out);
    await writeFile(path.join(out, 'mine.txt'), 'a user file');
    const e = await runCli(['holdout', '--data', src, '--out', out, '--force']);
    assert.equal(e.code, 1);
    assert.match(e.stderr, /^onepixel: error: [^\n]*--out[^\n]*\n$/);
    assert.deepEqual(await readdir(out), ['mine.txt']);
  });
});
