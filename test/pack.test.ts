/**
 * The published package: `npm pack` of this checkout (built), installed into an empty project from
 * the tarball alone (npm's cache holds the dependencies; no devDependencies, no TypeScript). Its
 * install script builds the native addon where the prerequisites exist, else prints what is
 * missing (and `doctor` says the same); `onepixel --help`, `doctor` and `protect` work through
 * npx, and the library entry point gives the same pixels as this checkout's source.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { searchDataset } from '../src/shortcut/search.js';
import type { Dataset } from '../src/data/dataset.js';
import { tempDirs } from './helpers.js';

const ROOT = process.cwd();
const tmp = tempDirs('onepixel-pack-');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...opts });
  if (r.error) throw r.error;
  const out = `${String(r.stdout)}${String(r.stderr)}`;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}:\n${out.slice(-3000)}`);
  return { stdout: String(r.stdout), out };
}

/** A hand-written .npy (format 1.0), independent of src/data/npy.ts. */
function npy(descr: string, shape: number[], data: Uint8Array): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')},), }`;
  const len = Math.ceil((10 + dict.length + 1) / 64) * 64 - 10;
  const header = Buffer.from(dict.padEnd(len - 1, ' ') + '\n', 'latin1');
  const pre = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, len & 255, len >> 8]);
  return Buffer.concat([pre, header, data]);
}

// 8 images 4×4×3, two classes; pixel values a fixed pseudo-random pattern.
const N = 8;
const IMAGES = Uint8Array.from({ length: N * 48 }, (_, i) => (i * 97 + 13) % 251);
const LABELS = [0, 1, 0, 1, 0, 1, 0, 1];
const DATASET: Dataset = {
  height: 4,
  width: 4,
  channels: 3,
  images: IMAGES,
  labels: Int32Array.from(LABELS),
  classNames: ['cat', 'dog'],
};

describe('npm pack → npm install into an empty project', () => {
  let project = '';
  let installLog = '';
  const missing: string[] = [];

  before(async () => {
    const prereqs = (await import(
      pathToFileURL(path.join(ROOT, 'scripts', 'native-prereqs.mjs')).href
    )) as { missingForNative(): string[] };
    missing.push(...prereqs.missingForNative());
  });

  it('packs what the package needs and nothing of the tests or builds', async () => {
    const dest = await tmp();
    // Built already (the tests run from dist/): --ignore-scripts skips `prepare`'s second tsc.
    const r = run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], {
      cwd: ROOT,
    });
    const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const files = info.files.map((f) => f.path);
    for (const f of [
      'package.json',
      'dist/src/cli/main.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'native/binding.gyp',
      'scripts/build-native.mjs',
      'scripts/native-prereqs.mjs',
    ])
      assert.ok(files.includes(f), f);
    assert.ok(files.filter((f) => f.startsWith('native/src/') && f.endsWith('.cc')).length > 3);
    for (const f of files)
      assert.doesNotMatch(f, /^(dist\/test|dist\/bench|native\/build|src|test)\//);

    project = await tmp();
    await writeFile(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'pack-consumer', version: '1.0.0', private: true, type: 'module' }),
    );
    const t0 = Date.now();
    const install = run(
      NPM,
      [
        'install',
        path.join(dest, info.filename),
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--foreground-scripts',
      ],
      { cwd: project, timeout: 600_000 },
    );
    installLog = install.out;
    console.log(`npm install of the tarball: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const pkg = path.join(project, 'node_modules', 'onepixel');
    assert.ok(existsSync(path.join(pkg, 'dist', 'src', 'cli', 'main.js')));
    // No devDependencies came along.
    for (const dev of ['typescript', 'eslint', 'prettier'])
      assert.ok(!existsSync(path.join(project, 'node_modules', dev)), dev);
  });

  it('built the native addon on install when its prerequisites exist, else said what is missing', () => {
    assert.ok(project, 'installed');
    const addon = path.join(
      project,
      'node_modules/onepixel/native/build/Release/onepixel_native.node',
    );
    if (missing.length === 0) {
      assert.match(installLog, /onepixel: native backend built in \d+ s \(oneDNN\)/);
      assert.ok(existsSync(addon), addon);
    } else {
      assert.match(installLog, /onepixel: native backend not built: missing /);
      assert.ok(!existsSync(addon));
    }
  });

  it('runs `onepixel --help` and `onepixel doctor` through npx', () => {
    assert.ok(project, 'installed');
    const help = run('npx', ['--no-install', 'onepixel', '--help'], { cwd: project });
    for (const c of ['protect', 'inspect', 'train', 'audit', 'doctor'])
      assert.match(help.stdout, new RegExp(`^  ${c} `, 'm'), c);
    const doctor = run('npx', ['--no-install', 'onepixel', 'doctor'], { cwd: project });
    const native = doctor.stdout.split('\n').find((l) => l.startsWith('native'));
    assert.ok(native, doctor.out);
    if (missing.length === 0)
      assert.ok(native.includes('node_modules/onepixel/native/build/Release'), native);
    assert.match(doctor.stdout, /^wasm\s+ok/m);
  });

  it('without the prerequisites: the install script skips the build and doctor says what is missing', async () => {
    assert.ok(project, 'installed');
    const pkg = path.join(project, 'node_modules', 'onepixel');
    await rm(path.join(pkg, 'native', 'build'), { recursive: true, force: true });
    // A PATH holding only node: no compiler, make or python3.
    const bin = await tmp();
    await symlink(process.execPath, path.join(bin, 'node'));
    const env = { ...process.env, PATH: bin };
    const r = run(process.execPath, ['scripts/build-native.mjs'], { cwd: pkg, env });
    assert.match(
      r.stdout,
      /^onepixel: native backend not built: missing .*g\+\+ \(a C\+\+ compiler\), make, python3 \(for node-gyp\).*; to build it: apt-get install -y libdnnl-dev g\+\+ make python3 && npm run build:native$/m,
    );
    assert.ok(!existsSync(path.join(pkg, 'native', 'build')), 'nothing built');
    const d = run(process.execPath, [path.join(pkg, 'dist/src/cli/main.js'), 'doctor'], {
      cwd: project,
      env,
    });
    const native = d.stdout.split('\n').find((l) => l.startsWith('native'));
    assert.ok(native, d.out);
    assert.match(native, /g\+\+ \(a C\+\+ compiler\), make, python3/);
    assert.match(d.stdout, /libdnnl-dev g\+\+ make python3 && npm run build:native/);
  });

  it('`npx onepixel protect` protects a .npy dataset as this checkout does', async () => {
    assert.ok(project, 'installed');
    const data = path.join(project, 'data');
    await mkdir(data);
    await writeFile(path.join(data, 'x_train.npy'), npy('|u1', [N, 4, 4, 3], IMAGES));
    const y = Buffer.alloc(8 * N);
    LABELS.forEach((l, i) => y.writeBigInt64LE(BigInt(l), 8 * i));
    await writeFile(path.join(data, 'y_train.npy'), npy('<i8', [N], y));
    await writeFile(path.join(data, 'classes.txt'), 'cat\ndog\n');
    const out = path.join(project, 'out');
    run(
      'npx',
      ['--no-install', 'onepixel', 'protect', '--dataset', 'npy', '--data-dir', data, '--out', out],
      {
        cwd: project,
      },
    );
    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as {
      classes: Array<{
        label: number;
        name: string;
        pixels: Array<{ row: number; col: number; value: number[] }>;
      }>;
    };
    const expected = searchDataset(DATASET);
    const strip = (cs: typeof manifest.classes) =>
      cs.map((c) => ({
        label: c.label,
        name: c.name,
        pixels: c.pixels.map((p) => ({ row: p.row, col: p.col, value: p.value })),
      }));
    assert.deepEqual(strip(manifest.classes), strip(expected.classes));
    // The written images: the input with each image's class pixel set (by hand).
    const x = await readFile(path.join(out, 'x_train.npy'));
    const body = x.subarray(x.length - N * 48);
    const want = IMAGES.slice();
    LABELS.forEach((l, i) => {
      const p = expected.classes[l].pixels[0];
      want.set(p.value, i * 48 + (p.row * 4 + p.col) * 3);
    });
    assert.deepEqual(new Uint8Array(body), want);
    assert.notDeepEqual(want, IMAGES);
  });

  it("the library entry point: import('onepixel') searches and applies the shortcut", () => {
    assert.ok(project, 'installed');
    const code = `
      const m = await import('onepixel');
      const ds = { height: 4, width: 4, channels: 3, classNames: ['cat', 'dog'],
        images: Uint8Array.from(${JSON.stringify([...IMAGES])}),
        labels: Int32Array.from(${JSON.stringify(LABELS)}) };
      const r = m.searchDataset(ds);
      const p = m.applyShortcut(ds, r);
      console.log(JSON.stringify({ classes: r.classes, images: [...p.images],
        error: typeof m.OnepixelError }));`;
    const r = run(process.execPath, ['--input-type=module', '-e', code], { cwd: project });
    const got = JSON.parse(r.stdout) as { classes: unknown; images: number[]; error: string };
    const expected = searchDataset(DATASET);
    assert.deepEqual(got.classes, JSON.parse(JSON.stringify(expected.classes)));
    const want = IMAGES.slice();
    LABELS.forEach((l, i) => {
      const px = expected.classes[l].pixels[0];
      want.set(px.value, i * 48 + (px.row * 4 + px.col) * 3);
    });
    assert.deepEqual(got.images, [...want]);
    assert.equal(got.error, 'function');
  });
});
