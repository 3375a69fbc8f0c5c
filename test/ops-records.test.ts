/**
 * OPS with CIFAR binary in and out runs on the record bytes (src/protect/ops-records.ts). Its
 * output must be the general path's (decode, search on H×W×C images, encode) byte for byte, manifest
 * included: on the real CIFAR-10 (both objectives, several pixels), on CIFAR-100, on training files
 * of uneven sizes, and under seeded mutations of small files, where both paths must refuse with the
 * same one-line error or write the same bytes. A file changed between the two passes is refused
 * and nothing is written.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { protect, type ProtectOptions } from '../src/protect/job.js';
import { OnepixelError } from '../src/errors.js';
import { cifarFixture, type Fixture, mutate, Rand, writeFixture } from './fuzz-helpers.js';
import { CIFAR_DIR, tempDirs } from './helpers.js';

const newDir = tempDirs('ops-records');
const HAVE_CIFAR = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));

/** Runs protect both ways; returns each output's files (or the error message) and progress. */
async function both(o: Omit<ProtectOptions, 'out'>) {
  const run = async (copyRecords: boolean) => {
    const out = path.join(await newDir(), 'out');
    let writeCalls = 0;
    try {
      await protect({
        ...o,
        out,
        copyRecords,
        onProgress: (phase) => {
          if (phase === 'write') writeCalls++;
        },
      });
    } catch (e) {
      if (!(e instanceof OnepixelError)) throw e;
      assert.ok(!existsSync(out), `${(e as Error).message}: the output was written`);
      return { error: e.message, files: null, writeCalls };
    }
    const files = new Map<string, Buffer>();
    for (const name of (await readdir(out)).sort()) {
      let bytes = await readFile(path.join(out, name));
      // The manifest names the output only through counts; dataDir is the same for both runs.
      if (name === 'manifest.json') bytes = Buffer.from(bytes.toString('utf8'));
      files.set(name, bytes);
    }
    return { error: null, files, writeCalls };
  };
  return { records: await run(true), general: await run(false) };
}

/**
 * cifarFixture's files with every class present at least twice (the search's minimum): CIFAR-10
 * with four records a training file, CIFAR-100 with 200 training records; three test records.
 */
function searchable(labelBytes: 1 | 2): Fixture {
  const f = cifarFixture(labelBytes);
  const r = new Rand(10 + labelBytes);
  let k = 0;
  const records = (n: number) =>
    Buffer.concat(
      Array.from({ length: n }, () => {
        const i = k++;
        const label = labelBytes === 1 ? [i % 10] : [i % 20, i % 100];
        return Buffer.concat([Buffer.from(label), r.bytes(3072)]);
      }),
    );
  if (labelBytes === 1) {
    for (let b = 1; b <= 5; b++) f.files.set(`data_batch_${b}.bin`, records(4));
    f.files.set('test_batch.bin', records(3));
  } else {
    f.files.set('train.bin', records(200));
    f.files.set('test.bin', records(3));
  }
  return f;
}

function assertSame(r: Awaited<ReturnType<typeof both>>, what: string, ok = true): void {
  if (ok) assert.equal(r.general.error, null, `${what}: refused`);
  assert.equal(r.records.error, r.general.error, `${what}: errors differ`);
  if (r.general.files === null) return;
  const a = r.records.files as Map<string, Buffer>;
  const b = r.general.files;
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: file names`);
  for (const [name, bytes] of b)
    assert.ok(
      bytes.equals(a.get(name) as Buffer),
      `${what}: ${name} differs from the general path`,
    );
  // The record path writes a chunk of records at a time, the general path one image at a time:
  // this tells which path ran.
  const images = JSON.parse((b.get('manifest.json') as Buffer).toString('utf8')).output;
  assert.equal(r.general.writeCalls, images.train + (images.test ?? 0), `${what}: general path`);
  assert.ok(r.records.writeCalls < r.general.writeCalls, `${what}: the record path did not run`);
}

describe('OPS on CIFAR record bytes', () => {
  it(
    'real CIFAR-10: the same bytes and manifest as the general path (official, 1 pixel)',
    { skip: HAVE_CIFAR ? false : `no CIFAR-10 at ${CIFAR_DIR}` },
    async () => {
      assertSame(await both({ dataset: 'cifar10', dataDir: CIFAR_DIR }), 'official');
    },
  );

  it(
    'real CIFAR-10: the paper objective with 3 pixels a class (cross products, overwrites)',
    { skip: HAVE_CIFAR ? false : `no CIFAR-10 at ${CIFAR_DIR}` },
    async () => {
      const o = { dataset: 'cifar10' as const, dataDir: CIFAR_DIR, objective: 'paper' as const };
      assertSame(await both({ ...o, pixels: 3 }), 'paper, 3 pixels');
    },
  );

  it('CIFAR-10 files of uneven sizes are spread over five even output files', async () => {
    const dir = await newDir();
    const r = new Rand(5);
    const sizes = [3, 7, 1, 4, 5];
    let k = 0;
    const record = () => Buffer.concat([Buffer.from([k++ % 10]), r.bytes(3072)]);
    for (const [b, n] of sizes.entries())
      await writeFile(
        path.join(dir, `data_batch_${b + 1}.bin`),
        Buffer.concat(Array.from({ length: n }, record)),
      );
    const res = await both({ dataset: 'cifar10', dataDir: dir, pixels: 2 });
    assertSame(res, 'uneven');
    const files = res.records.files as Map<string, Buffer>;
    for (let b = 1; b <= 5; b++)
      assert.equal((files.get(`data_batch_${b}.bin`) as Buffer).length, 4 * 3073);
    assert.ok(!files.has('test_batch.bin'), 'no test file in, none out');
  });

  it('CIFAR-100 (coarse labels kept)', async () => {
    const dir = await newDir();
    await writeFixture(dir, searchable(2));
    assertSame(await both({ dataset: 'cifar100', dataDir: dir }), 'CIFAR-100');
  });

  it('under 60 seeded mutations both paths refuse alike or write the same bytes', async () => {
    const r = new Rand(77);
    let refused = 0;
    for (let i = 0; i < 60; i++) {
      const labelBytes = i % 2 === 0 ? 1 : 2;
      const fixture = searchable(labelBytes);
      const names = [...fixture.files.keys()];
      const name = r.pick(names);
      const m = mutate(r, fixture.files.get(name) as Buffer, fixture.header(name));
      const dir = await newDir();
      await writeFixture(dir, fixture);
      await writeFile(path.join(dir, name), m.bytes);
      const dataset = labelBytes === 1 ? ('cifar10' as const) : ('cifar100' as const);
      const res = await both({ dataset, dataDir: dir });
      assertSame(res, `case ${i} (${name} ${m.how})`, false);
      if (res.general.error !== null) {
        refused++;
        assert.ok(!res.general.error.includes('\n'), `case ${i}: one line`);
      }
    }
    assert.ok(refused > 10 && refused < 55, `${refused} of 60 refused: both outcomes occur`);
  });

  it('a training file changed after the search is refused, nothing written', async () => {
    const dir = await newDir();
    await writeFixture(dir, searchable(1));
    const file = path.join(dir, 'data_batch_3.bin');
    const out = path.join(await newDir(), 'out');
    let changed = false;
    await assert.rejects(
      protect({
        dataset: 'cifar10',
        dataDir: dir,
        out,
        onProgress: (phase) => {
          // The first write progress comes after data_batch_1 was copied: change a later file.
          if (phase !== 'write' || changed) return;
          changed = true;
          writeFileSync(file, Buffer.alloc(4 * 3073, 1));
        },
      }),
      (e: Error) =>
        e instanceof OnepixelError &&
        e.message === `${file}: changed while onepixel was protecting it (its SHA-256 differs)`,
    );
    assert.ok(changed);
    assert.ok(!existsSync(out), 'nothing written');
  });
});
