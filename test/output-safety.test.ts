/**
 * Never lose data: protect --out, train --checkpoint and EM's --checkpoint, with --force, refuse
 * the input itself, a folder holding the input, and a user's folder onepixel did not write (its
 * files stay byte for byte), and replace a previous onepixel output. Unwritable outputs fail at
 * once with the reason.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { npyFixture, runCli, tempDirs } from './helpers.js';

const tmp = tempDirs('output-safety');

/** Every file under `dir` with the sha256 of its bytes. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath ?? e.path, e.name);
    out[path.relative(dir, p)] = createHash('sha256')
      .update(await readFile(p))
      .digest('hex');
  }
  return out;
}

let root: string; // the user's folder: root/data is the dataset, root/notes.txt their file
let data: string;
let initial: Record<string, string>;
const EM_FAST = ['--em-steps', '1', '--em-train-steps', '1', '--em-batch-size', '16'];
const EM_ONE = ['--method', 'em', '--max-rounds', '1', '--em-noise-batch', '50', ...EM_FAST];

before(async () => {
  root = await tmp();
  data = path.join(root, 'data');
  await npyFixture(data, 'data_batch_1.bin', 100, 10);
  await writeFile(path.join(root, 'notes.txt'), 'the user’s own file\n');
  initial = await snapshot(root);
});

/** A folder of the user's with files, not written by onepixel. */
async function userFolder(): Promise<string> {
  const d = path.join(await tmp(), 'mine');
  await mkdir(path.join(d, 'sub'), { recursive: true });
  await writeFile(path.join(d, 'thesis.tex'), 'chapter 1\n');
  await writeFile(path.join(d, 'sub', 'data.bin'), new Uint8Array([1, 2, 3]));
  return d;
}

type Target = { name: string; run: (out: string) => string[]; marker: string };
const TARGETS: Target[] = [
  {
    name: 'protect --out',
    run: (out) => ['protect', '--dataset', 'npy', '--data-dir', data, '--out', out, '--force'],
    marker: 'manifest.json',
  },
  {
    name: 'train --checkpoint',
    run: (ckpt) => [
      ...['train', '--data', data, '--dataset', 'npy', '--epochs', '1', '--batch-size', '25'],
      ...['--checkpoint', ckpt, '--results', path.join(path.dirname(root), 'r.json'), '--force'],
    ],
    marker: 'checkpoint.json',
  },
  {
    name: 'protect --method em --checkpoint',
    run: (ckpt) => [
      ...['protect', '--dataset', 'npy', '--data-dir', data, '--out'],
      ...[path.join(path.dirname(root), `em-out-${path.basename(ckpt)}`), '--force'],
      ...[...EM_ONE, '--checkpoint', ckpt],
    ],
    marker: 'em.json',
  },
];

for (const t of TARGETS)
  describe(`${t.name} with --force`, () => {
    it('refuses the input itself and a folder holding it; nothing of the user is touched', async () => {
      for (const out of [data, root]) {
        const before = await snapshot(root);
        const r = await runCli(t.run(out), 120_000);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /never replaces its input/);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.deepEqual(await snapshot(root), before);
      }
    });

    it("refuses a user's folder that onepixel did not write; its files stay", async () => {
      const mine = await userFolder();
      const before = await snapshot(mine);
      const r = await runCli(t.run(mine), 120_000);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`not written by onepixel \\(no ${t.marker}\\)`));
      assert.deepEqual(await snapshot(mine), before);
    });

    it('replaces a previous onepixel output', async () => {
      const prev = path.join(await tmp(), 'prev');
      await mkdir(prev);
      await writeFile(path.join(prev, t.marker), '{"stale": true}\n');
      await writeFile(path.join(prev, 'stale.txt'), 'old\n');
      const r = await runCli(t.run(prev), 300_000);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(existsSync(path.join(prev, 'stale.txt')), false);
      const marker = await readFile(path.join(prev, t.marker), 'utf8');
      assert.doesNotMatch(marker, /stale/);
      assert.deepEqual(await snapshot(root), initial);
    });
  });

describe('an output that cannot be created fails at once, with the reason', () => {
  const cases = async (): Promise<Array<[string, RegExp]>> => {
    const file = path.join(await tmp(), 'a-file');
    await writeFile(file, 'x');
    let readOnly = '/sys/onepixel-test/out';
    if (process.getuid?.() !== 0) {
      const d = path.join(await tmp(), 'ro');
      await mkdir(d);
      await chmod(d, 0o555);
      readOnly = path.join(d, 'out');
    }
    return [
      ['/proc/none/x', /cannot be created: cannot create \/proc\/none \(ENOENT\)/],
      [path.join(file, 'x'), /cannot be created: .*a-file is not a folder/],
      [readOnly, /cannot be created/],
    ];
  };
  for (const t of TARGETS)
    it(t.name, async () => {
      for (const [out, re] of await cases()) {
        const t0 = Date.now();
        const r = await runCli(t.run(out), 30_000);
        assert.equal(r.code, 1, `${out}: ${r.stderr}`);
        assert.match(r.stderr, re, out);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.ok(Date.now() - t0 < 20_000, `${out}: ${Date.now() - t0} ms`);
        assert.equal(await stat(out).catch(() => null), null);
      }
    });
});
