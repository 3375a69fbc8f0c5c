/**
 * The output writer (src/output.ts) in-process: checkOutput's refusals, replaceDir,
 * writeFileAtomic, and writeAtomically's abort checks (a signal that comes while the output is
 * being filled must leave no output, even when it comes just before the final rename). The CLI
 * tests (output-safety, signals) drive the same code through child processes, where a mutation
 * run cannot see it. Signal state is process-wide and one-way: the abort tests run last.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  checkOutput,
  exists,
  isAborting,
  removeOutput,
  removePending,
  replaceDir,
  writeAtomically,
  writeFileAtomic,
} from '../src/output.js';
import { tempDirs } from './helpers.js';

const tmp = tempDirs('output');
const rules = (over: Partial<Parameters<typeof checkOutput>[1]> = {}) => ({
  flag: '--out',
  force: false,
  marker: 'manifest.json',
  inputs: [] as Array<string | undefined>,
  ...over,
});

describe('output writer', () => {
  it('checkOutput: a new output is fine and its missing parents are made', async () => {
    const out = path.join(await tmp(), 'a', 'b', 'out');
    assert.equal(await checkOutput(out, rules()), false);
    assert.ok(await exists(path.dirname(out)), 'the parent was made');
    assert.deepEqual(await readdir(path.dirname(out)), [], 'the probe folder was removed');
  });

  it('checkOutput: refuses the input itself, a folder holding it, and a folder not ours', async () => {
    const dir = await tmp();
    const input = path.join(dir, 'data', 'batch.bin');
    await mkdir(path.dirname(input));
    await writeFile(input, 'x');
    await assert.rejects(
      checkOutput(input, rules({ inputs: [undefined, input] })),
      /^OnepixelError: --out .*batch\.bin: is the input .*batch\.bin; onepixel never replaces its input/,
    );
    await assert.rejects(
      checkOutput(path.join(dir, 'data'), rules({ inputs: [input] })),
      /--out .*data: contains the input/,
    );
    // A sibling whose name starts with the output's is not inside it.
    const out = path.join(dir, 'dat');
    assert.equal(await checkOutput(out, rules({ inputs: [input] })), false);
    await assert.rejects(
      checkOutput(path.join(dir, 'data'), rules({ force: true })),
      /exists and was not written by onepixel \(no manifest\.json\); refusing to replace it, even with --force/,
    );
  });

  it('checkOutput: an existing output of ours needs --force (or --resume where one resumes)', async () => {
    const out = path.join(await tmp(), 'out');
    await mkdir(out);
    await writeFile(path.join(out, 'manifest.json'), '{}');
    await assert.rejects(checkOutput(out, rules()), /already exists; pass --force to replace it$/);
    await assert.rejects(
      checkOutput(out, rules({ marker: 'checkpoint.json', inputs: [] })),
      /exists and was not written/,
    );
    await writeFile(path.join(out, 'checkpoint.json'), '{}');
    await assert.rejects(
      checkOutput(out, rules({ marker: 'checkpoint.json' })),
      /already exists; pass --force to replace it or --resume to continue it$/,
    );
    assert.equal(await checkOutput(out, rules({ force: true })), true);
    assert.equal(await checkOutput(out, rules({ marker: 'checkpoint.json', resume: true })), true);
    // An empty folder holds nothing to lose.
    const empty = path.join(await tmp(), 'empty');
    await mkdir(empty);
    assert.equal(await checkOutput(empty, rules({ force: true })), true);
    // A file is never an output folder of ours.
    const file = path.join(await tmp(), 'file');
    await writeFile(file, 'x');
    await assert.rejects(checkOutput(file, rules({ force: true })), /was not written by onepixel/);
  });

  it('checkOutput: a parent that is a file fails at once, naming it', async () => {
    const dir = await tmp();
    await writeFile(path.join(dir, 'f'), 'x');
    await assert.rejects(
      checkOutput(path.join(dir, 'f', 'out'), rules()),
      new RegExp(`^OnepixelError: --out .*f/out: cannot be created: ${dir}/f is not a folder$`),
    );
    // Deeper, the first path that cannot be looked at is named with its error.
    await assert.rejects(
      checkOutput(path.join(dir, 'f', 'a', 'out'), rules()),
      new RegExp(`^OnepixelError: --out .*f/a/out: cannot be created: ${dir}/f/a: ENOTDIR$`),
    );
  });

  it('removeOutput removes only a folder with the marker', async () => {
    const dir = await tmp();
    const ours = path.join(dir, 'ours');
    await mkdir(ours);
    await writeFile(path.join(ours, 'manifest.json'), '{}');
    await writeFile(path.join(ours, 'x'), 'x');
    await removeOutput(ours, rules());
    assert.equal(await exists(ours), false);
    await removeOutput(ours, rules()); // already gone: nothing to do
    const theirs = path.join(dir, 'theirs');
    await mkdir(theirs);
    await writeFile(path.join(theirs, 'x'), 'x');
    await assert.rejects(removeOutput(theirs, rules()), /theirs: was not written by onepixel/);
    assert.equal(await readFile(path.join(theirs, 'x'), 'utf8'), 'x');
  });

  it('replaceDir puts the new folder in place of the old and leaves nothing else', async () => {
    const dir = await tmp();
    const [a, b] = [path.join(dir, 'new'), path.join(dir, 'out')];
    await mkdir(a);
    await writeFile(path.join(a, 'v'), '2');
    await mkdir(b);
    await writeFile(path.join(b, 'v'), '1');
    await replaceDir(a, b);
    assert.equal(await readFile(path.join(b, 'v'), 'utf8'), '2');
    assert.deepEqual(await readdir(dir), ['out']);
  });

  it('writeFileAtomic writes the whole file and no temporary is left', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'f.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, new Uint8Array([0x74, 0x77, 0x6f]));
    assert.equal(await readFile(file, 'utf8'), 'two');
    assert.deepEqual(await readdir(dir), ['f.json']);
  });

  it('writeAtomically fills a temporary sibling, then renames it to the output', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'sub', 'out');
    let seen = '';
    await writeAtomically(out, async (d) => {
      seen = d;
      assert.equal(path.dirname(d), path.dirname(out));
      assert.equal(await exists(out), false, 'the output appears only when complete');
      await writeFile(path.join(d, 'x'), 'x');
    });
    assert.equal(path.basename(seen), `.out.tmp-${process.pid}`);
    assert.deepEqual(await readdir(path.join(dir, 'sub')), ['out']);
    assert.equal(await readFile(path.join(out, 'x'), 'utf8'), 'x');
    // A failing fill leaves the earlier output and no temporary.
    await assert.rejects(
      writeAtomically(out, async (d) => {
        await writeFile(path.join(d, 'x'), 'half');
        throw new Error('disk on fire');
      }),
      /disk on fire/,
    );
    assert.deepEqual(await readdir(path.join(dir, 'sub')), ['out']);
    assert.equal(await readFile(path.join(out, 'x'), 'utf8'), 'x');
    // A parent that cannot be made fails in one line.
    await writeFile(path.join(dir, 'file'), 'x');
    await assert.rejects(
      writeAtomically(path.join(dir, 'file', 'out'), async () => undefined),
      /^OnepixelError: .*file\/out: cannot be created: .*file is not a folder$/,
    );
  });

  // From here on the process counts as signalled (removePending sets it for good).
  it('removePending deletes the unfinished folder, and a file written in flight after it', async () => {
    const dir = await tmp();
    assert.equal(isAborting(), false);
    let gone = false;
    await assert.rejects(
      writeAtomically(path.join(dir, 'out'), async (d) => {
        await writeFile(path.join(d, 'x'), 'x');
        const removal = removePending();
        // A writer that had a file in flight: it lands a few milliseconds after the signal.
        await new Promise((r) => setTimeout(r, 8));
        await mkdir(d, { recursive: true });
        await writeFile(path.join(d, 'late'), 'x');
        await removal;
        gone = !(await exists(d));
      }),
      /^OnepixelError: interrupted$/,
    );
    assert.equal(gone, true, 'removed by removePending itself, before the fill returned');
    assert.deepEqual(await readdir(dir), []);
  });

  it('after a signal, a started write ends "interrupted": no output, no temporary', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'out');
    let removal: Promise<void> | null = null;
    await assert.rejects(
      writeAtomically(out, async (d) => {
        await writeFile(path.join(d, 'x'), 'x');
        // The signal handler starts removing pending folders as the fill returns.
        removal = removePending();
      }),
      /^OnepixelError: interrupted$/,
    );
    await removal;
    assert.equal(isAborting(), true);
    assert.deepEqual(await readdir(dir), [], 'neither the output nor its temporary is there');
  });

  it('after a signal, a write that was about to start never runs its fill', async () => {
    const dir = await tmp();
    let filled = false;
    await assert.rejects(
      writeAtomically(path.join(dir, 'out'), async () => {
        filled = true;
      }),
      /^OnepixelError: interrupted$/,
    );
    assert.equal(filled, false);
    assert.deepEqual(await readdir(dir), []);
  });
});
