/**
 * docs/training-on-the-protected-copy.md: every fenced python block runs with /usr/bin/python3
 * against a small protected copy (300 training, 200 test CIFAR-10 images, as pickles and PNGs),
 * each in a fresh process; a block whose imports are missing here is skipped, naming them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { protect } from '../src/protect/job.js';
import { PYTHON, cifarClassNames, cifarRecords, tempDirs } from './helpers.js';
import { SUBCLASSES } from './torchvision-subclasses.js';

const DOC = path.resolve('docs/training-on-the-protected-copy.md');
const newDir = tempDirs('training-docs');

interface Block {
  heading: string;
  code: string;
}

/** The fenced python blocks, each with the section heading above it. */
function pythonBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let heading = '';
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('#')) heading = lines[i].replace(/^#+\s*/, '');
    if (lines[i].trim() !== '```python') continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `${DOC}: unclosed block at line ${i + 1}`);
    blocks.push({
      heading: `${heading} (line ${i + 1})`,
      code: lines.slice(i + 1, end).join('\n'),
    });
    i = end;
  }
  return blocks;
}

/** The top-level modules a block imports that this python cannot import. */
function missingModules(code: string): string[] {
  const mods = new Set<string>();
  for (const m of code.matchAll(/^(?:import|from)\s+([A-Za-z_]\w*)/gm)) mods.add(m[1]);
  return [...mods].filter(
    (m) => spawnSync(PYTHON, ['-c', `import ${m}`], { encoding: 'utf8' }).status !== 0,
  );
}

const blocks = pythonBlocks(readFileSync(DOC, 'utf8'));

describe('docs/training-on-the-protected-copy.md', () => {
  let cwd: string;
  before(async () => {
    const src = await newDir();
    for (let i = 1; i <= 5; i++)
      await writeFile(
        path.join(src, `data_batch_${i}.bin`),
        await cifarRecords(`data_batch_${i}.bin`, 60),
      );
    await writeFile(path.join(src, 'test_batch.bin'), await cifarRecords('test_batch.bin', 200));
    await writeFile(
      path.join(src, 'batches.meta.txt'),
      (await cifarClassNames()).join('\n') + '\n',
    );
    cwd = await newDir();
    for (const [out, format] of [
      ['protected-cifar10', 'cifar-python'],
      ['protected-png', 'png'],
    ] as const)
      await protect({ dataset: 'cifar10', dataDir: src, out: path.join(cwd, out), format });
  });

  it('has the PyTorch, TensorFlow/Keras, NumPy and JAX blocks, and the tested subclasses', () => {
    const all = blocks.map((b) => b.code).join('\n');
    for (const lib of ['torch', 'ImageFolder', 'tensorflow', 'numpy', 'jax'])
      assert.match(all, new RegExp(`\\b${lib}\\b`), lib);
    // The subclasses test/torchvision.test.ts checks every image with are the ones shown here.
    assert.ok(all.includes(SUBCLASSES.trim().split('\n').slice(1).join('\n')));
  });

  for (const block of blocks) {
    const missing = missingModules(block.code);
    const skip = missing.length ? `${PYTHON} cannot import ${missing.join(', ')}` : false;
    it(`runs: ${block.heading}`, { skip }, () => {
      const r = spawnSync(PYTHON, ['-c', block.code], { cwd, encoding: 'utf8', timeout: 300_000 });
      if (r.error) throw r.error;
      assert.equal(r.status, 0, `${block.heading} failed:\n${r.stderr}`);
      assert.match(r.stdout, /accuracy|training images/);
    });
  }
});
