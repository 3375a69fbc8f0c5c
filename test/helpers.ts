/**
 * Shared test helpers: where the real data lives, temp folders removed after the file's tests, and
 * hand decoders for the raw CIFAR-10 / IDX bytes (independent of src/) to check the readers against.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { imageSize, streamOf, type Dataset } from '../src/data/dataset.js';
import type { SplitToWrite } from '../src/data/write.js';
import { writeNpy } from '../src/data/npy.js';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, type BackendName } from '../src/nn/engine.js';

/** The shared CIFAR-10 binary copy (read-only): `<repo root>/../shared/data/cifar-10-batches-bin`. */
export const CIFAR_DIR = path.resolve(process.cwd(), '../shared/data/cifar-10-batches-bin');
export const CIFAR_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR_RECORD = 3073;

/** Debian's `dataset-fashion-mnist` (gzipped IDX). */
export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_FILES = [
  'train-images-idx3-ubyte.gz',
  'train-labels-idx1-ubyte.gz',
  't10k-images-idx3-ubyte.gz',
  't10k-labels-idx1-ubyte.gz',
];
export const HAVE_FASHION = FASHION_FILES.every((f) => existsSync(path.join(FASHION_DIR, f)));
export const NO_FASHION = HAVE_FASHION
  ? false
  : `Fashion-MNIST not installed at ${FASHION_DIR} (apt-get install dataset-fashion-mnist)`;

export const PYTHON = '/usr/bin/python3';

/** False when /usr/bin/python3 imports numpy, else the reason to skip python-based tests. */
export function noNumpy(): false | string {
  const r = spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} not runnable (${r.error.message})`;
  if (r.status !== 0) return `${PYTHON} lacks numpy: ${r.stderr.trim().split('\n').pop()}`;
  return false;
}

/** Runs a python snippet with arguments; fails the test with python's stderr when it fails. */
export function runPython(code: string, args: string[] = []): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A factory of fresh, empty temp folders under one root that is removed after the test file's
 * tests (a top-level `after` hook).
 */
export function tempDirs(prefix: string): () => Promise<string> {
  let root: Promise<string> | null = null;
  let n = 0;
  after(async () => {
    if (root) await rm(await root, { recursive: true, force: true });
  });
  return async () => {
    root ??= mkdtemp(path.join(os.tmpdir(), `onepixel-${prefix}-`));
    const dir = path.join(await root, String(n++));
    await mkdir(dir);
    return dir;
  };
}

/** One raw CIFAR record (label byte(s) + R, G, B planes) decoded by hand into 32×32×3 HWC. */
export function cifarRecordToHwc(rec: Uint8Array, labelBytes = 1): Uint8Array {
  const hwc = new Uint8Array(32 * 32 * 3);
  for (let c = 0; c < 3; c++)
    for (let p = 0; p < 1024; p++) hwc[p * 3 + c] = rec[labelBytes + c * 1024 + p];
  return hwc;
}

export async function cifarClassNames(): Promise<string[]> {
  return (await readFile(path.join(CIFAR_DIR, 'batches.meta.txt'), 'utf8'))
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The first `n` records of a real CIFAR-10 file (or records `from`..`from+n`), as raw bytes. */
export async function cifarRecords(file: string, n: number, from = 0): Promise<Buffer> {
  const buf = await readFile(path.join(CIFAR_DIR, file));
  return Buffer.from(buf.subarray(from * CIFAR_RECORD, (from + n) * CIFAR_RECORD));
}

/** Raw CIFAR-10 records decoded by hand into a Dataset. */
export function cifarDataset(raw: Uint8Array, classNames: string[]): Dataset {
  const n = raw.length / CIFAR_RECORD;
  const images = new Uint8Array(n * 3072);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const rec = raw.subarray(i * CIFAR_RECORD, (i + 1) * CIFAR_RECORD);
    labels[i] = rec[0];
    images.set(cifarRecordToHwc(rec), i * 3072);
  }
  return { height: 32, width: 32, channels: 3, images, labels, classNames };
}

export interface FashionRaw {
  /** The gunzipped files. */
  imageFile: Buffer;
  labelFile: Buffer;
  /** Views past the headers: N×784 pixels and N labels. */
  pixels: Buffer;
  labels: Buffer;
}

const fashionCache = new Map<string, Promise<FashionRaw>>();

/** A split's gunzipped Fashion-MNIST files, decoded once per test file (do not modify them). */
export function fashionRaw(split: 'train' | 't10k'): Promise<FashionRaw> {
  let p = fashionCache.get(split);
  if (!p) {
    p = (async () => {
      const dir = FASHION_DIR;
      const img = gunzipSync(await readFile(path.join(dir, `${split}-images-idx3-ubyte.gz`)));
      const lbl = gunzipSync(await readFile(path.join(dir, `${split}-labels-idx1-ubyte.gz`)));
      return { imageFile: img, labelFile: lbl, pixels: img.subarray(16), labels: lbl.subarray(8) };
    })();
    fashionCache.set(split, p);
  }
  return p;
}

/** The first `n` Fashion-MNIST images of a split as a 28×28×1 Dataset, decoded by hand. */
export async function fashionDataset(
  split: 'train' | 't10k',
  n: number,
  classNames: string[],
): Promise<Dataset> {
  const raw = await fashionRaw(split);
  return {
    height: 28,
    width: 28,
    channels: 1,
    images: new Uint8Array(raw.pixels.subarray(0, n * 784)),
    labels: Int32Array.from(raw.labels.subarray(0, n)),
    classNames,
  };
}

/** Per-class image counts, computed independently of src/. */
export function countsOf(labels: ArrayLike<number>, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}

/** A Buffer view on a typed array's bytes (no copy), for Buffer.equals / Buffer.compare. */
export function bytesOf(a: Uint8Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Exact equality of two datasets' shape, pixels, labels and names. */
export function assertSameDataset(actual: Dataset, expected: Dataset, what: string): void {
  assert.deepEqual(
    [actual.height, actual.width, actual.channels],
    [expected.height, expected.width, expected.channels],
    `${what}: shape`,
  );
  assert.equal(actual.labels.length, expected.labels.length, `${what}: count`);
  assert.ok(bytesOf(actual.images).equals(bytesOf(expected.images)), `${what}: pixels differ`);
  assert.ok(bytesOf(actual.labels).equals(bytesOf(expected.labels)), `${what}: labels differ`);
  assert.deepEqual(actual.classNames, expected.classNames, `${what}: class names`);
}

/** Fashion-MNIST's class names, written out independently of src/. */
export const FASHION_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Writer input: the train split, and the test split when there is one. */
export function splits(train: Dataset, test: Dataset | null): SplitToWrite[] {
  const out: SplitToWrite[] = [{ name: 'train', stream: streamOf(train) }];
  if (test) out.push({ name: 'test', stream: streamOf(test) });
  return out;
}

/**
 * Why the webgpu backend cannot be tested here, or false when it can (it starts, on a GPU or on
 * Mesa's software OpenGL). Under CI (`CI=true`, set by .ci/run, whose set-up installs Mesa's EGL) a
 * missing adapter is an error, not a skip.
 */
export async function webgpuSkipReason(): Promise<string | false> {
  try {
    await initEngine('webgpu');
    return false;
  } catch (e) {
    if (process.env.CI) throw e;
    return `no WebGPU adapter here: ${(e as Error).message}`;
  }
}

/** The first `n` images of a dataset (copies). */
export function headOf(ds: Dataset, n: number): Dataset {
  const s = imageSize(ds);
  return { ...ds, images: ds.images.slice(0, n * s), labels: ds.labels.slice(0, n) };
}

/** Deterministic uniform values in [-1, 1) (mulberry32). */
export function random(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** The built CLI, as the tests run it. */
export const CLI = path.join(process.cwd(), 'dist/src/cli/main.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment of a CLI child: CI (no progress bars), outside the parent's test runner. */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: '1' };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

/**
 * Runs the CLI to completion; kills it (and fails) after `timeoutMs`. `wrapper` runs it through
 * another command (e.g. setpriv, to run it as another user).
 */
export function runCli(
  args: string[],
  timeoutMs = 300_000,
  wrapper: string[] = [],
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const line = [...wrapper, process.execPath, CLI, ...args];
    const child = spawn(line[0], line.slice(1), { env: childEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`onepixel ${args.join(' ')}: still running after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs `compute` on `backend`, returning copies of its results; checks it frees what it makes. */
export async function on(
  backend: BackendName,
  compute: () => tf.Tensor[],
): Promise<Float32Array[]> {
  assert.equal(await initEngine(backend), backend);
  const before = tf.memory().numTensors;
  const dataBefore = tf.backend().numDataIds();
  let values: Float32Array[] = [];
  // Not returned from the tidy: tfjs would walk every element of the arrays looking for tensors.
  tf.tidy(() => {
    values = compute().map((t) => Float32Array.from(t.dataSync()));
  });
  assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked`);
  assert.equal(tf.backend().numDataIds(), dataBefore, `${backend}: backend data leaked`);
  return values;
}

/**
 * Writes an npy dataset folder `dir` (made if missing): the first `train` records of the CIFAR-10
 * file `batch` as its training split, the first `test` of test_batch.bin as its test split.
 */
export async function npyFixture(
  dir: string,
  batch: string,
  train: number,
  test: number,
): Promise<void> {
  const names = await cifarClassNames();
  await mkdir(dir, { recursive: true });
  await writeNpy(
    dir,
    splits(
      cifarDataset(await cifarRecords(batch, train), names),
      cifarDataset(await cifarRecords('test_batch.bin', test), names),
    ),
  );
}

/**
 * The small audit the shard tests run: 300 training images of `batch` and 60 test images as npy in
 * `work/clean`, their OPS copy in `work/ops`; returns the audit flags (LeNet-5, seeds 0 and 1,
 * 2 epochs) without `audit` and `--out`.
 */
export async function smallAudit(work: string, batch: string): Promise<string[]> {
  const clean = path.join(work, 'clean');
  await npyFixture(clean, batch, 300, 60);
  const ops = path.join(work, 'ops');
  const p = await runCli(['protect', '--dataset', 'npy', '--data-dir', clean, '--out', ops]);
  assert.equal(p.code, 0, p.stderr);
  return [
    '--clean',
    clean,
    '--protected',
    ops,
    '--models',
    'lenet5',
    '--seeds',
    '0,1',
    '--epochs',
    '2',
  ];
}
