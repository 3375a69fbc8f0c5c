/**
 * Training checkpoints: `checkpoint.json` (progress, config, history, layout) and `weights.bin`
 * (model weights, then the optimiser's momentum buffers, float32), written under a temporary
 * name and renamed. The JSON carries the sha256 of the binary and `metaSha256`, the sha256 of its
 * own canonical content, so any damage to either file is refused with a one-line error naming the
 * file, never loaded or taken for "no checkpoint".
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { fail, OnepixelError } from '../errors.js';
import { sha256 } from '../data/files.js';
import { writeAtomically } from '../output.js';
import type { SGDState } from './optim.js';
import type { RngState } from './rng.js';

/** The file that proves a folder is a checkpoint onepixel wrote. */
export const CHECKPOINT_MARKER = 'checkpoint.json';

export interface Tensorish {
  name: string;
  shape: number[];
  values: Float32Array;
}

/**
 * Writes each of `model`'s weights from the saved tensor of its name (a checkpoint may hold more:
 * fast94's keeps the lookahead averages beside them); fails naming `where` when one is missing or
 * has another shape.
 */
export function writeWeightsByName(model: LayersModel, saved: Tensorish[], where: string): void {
  for (const w of model.weights) {
    const s = saved.find((t) => t.name === w.originalName);
    if (!s || s.shape.join() !== w.shape.join())
      fail(
        `${where}: ${s ? `weight ${s.name} [${s.shape}] does not fit` : 'no weight'} ${w.originalName} [${w.shape}]`,
      );
    const t = tf.tensor(s.values, s.shape);
    w.write(t);
    t.dispose();
  }
}

export interface CheckpointMeta<C, H> {
  /** 2 adds `metaSha256` and `dataset`; 1 (older) is still read. */
  format: 'onepixel-checkpoint-2' | 'onepixel-checkpoint-1';
  config: C;
  /** Epochs finished, and steps done in the epoch under way. */
  epoch: number;
  step: number;
  rng: RngState;
  /** Running sums of the epoch under way (loss, correct, seen) so a resumed epoch reports the same. */
  running: { loss: number; correct: number; seen: number; seconds: number };
  history: H;
  optimizerStep: number;
  weights: Array<{ name: string; shape: number[] }>;
  buffers: Array<{ name: string; shape: number[] }>;
  sha256: string;
  /** Fingerprint of the data trained on (see datasetFingerprint); absent in format 1. */
  dataset?: string;
  /** sha256 of {@link canonicalJson} of every other field; absent in format 1. */
  metaSha256?: string;
}

/** JSON with object keys sorted at every level: the same text for the same content. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x ?? null)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** The checksum of a checkpoint's JSON: sha256 of its canonical content without `metaSha256`. */
export function metaChecksum(meta: object): string {
  const rest: Record<string, unknown> = { ...meta };
  delete rest.metaSha256;
  return sha256(Buffer.from(canonicalJson(rest)));
}

/**
 * Reads and checks a checkpoint's JSON file: missing, unreadable, not JSON, not an object, or
 * its checksum differs → a one-line OnepixelError naming the file. `legacy`: formats written
 * before the checksum existed, accepted without one.
 */
export async function readCheckedJson(
  file: string,
  legacy: string[],
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(
      `${file}: ${code === 'ENOENT' ? 'missing' : `unreadable (${code ?? (e as Error).message})`}; damaged checkpoint, refusing it`,
    );
  }
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    fail(`${file}: not valid JSON; damaged checkpoint, refusing it`);
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta))
    fail(`${file}: not a checkpoint (not a JSON object); refusing it`);
  const m = meta as Record<string, unknown>;
  if (m.metaSha256 === undefined && legacy.includes(m.format as string)) return m;
  if (typeof m.metaSha256 !== 'string' || m.metaSha256 !== metaChecksum(m))
    fail(
      `${file}: damaged checkpoint (its content does not match its checksum metaSha256); refusing it`,
    );
  return m;
}

const isInt = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
const isNum = (x: unknown) => typeof x === 'number';

/** A layout's element count, or null when it is not a list of {name, shape} of sane sizes. */
function layoutCount(x: unknown): number | null {
  if (!Array.isArray(x)) return null;
  let total = 0;
  for (const t of x as Array<{ name?: unknown; shape?: unknown }>) {
    if (t === null || typeof t !== 'object' || typeof t.name !== 'string') return null;
    if (!Array.isArray(t.shape) || !t.shape.every(isInt)) return null;
    total += (t.shape as number[]).reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(total)) return null;
  }
  return total;
}

/** What is wrong with a parsed checkpoint.json's shape, or null when nothing. */
function shapeProblem(m: Record<string, unknown>): string | null {
  if (m.format !== 'onepixel-checkpoint-2' && m.format !== 'onepixel-checkpoint-1')
    return `format ${JSON.stringify(m.format)} is not an onepixel checkpoint`;
  if (m.config === null || typeof m.config !== 'object') return 'config is missing';
  for (const k of ['epoch', 'step', 'optimizerStep'] as const)
    if (!isInt(m[k])) return `${k} is not a count`;
  const rng = m.rng as { s?: unknown; spare?: unknown } | null;
  if (rng === null || typeof rng !== 'object' || !Array.isArray(rng.s) || rng.s.length !== 4)
    return 'rng is not a generator state';
  if (!rng.s.every(isNum) || !(rng.spare === null || isNum(rng.spare)))
    return 'rng is not a generator state';
  const r = m.running as Record<string, unknown> | null;
  if (r === null || typeof r !== 'object') return 'running is missing';
  if (!['loss', 'correct', 'seen', 'seconds'].every((k) => isNum(r[k] ?? NaN) || r[k] === null))
    return 'running is not a set of sums';
  if (!Array.isArray(m.history)) return 'history is not a list';
  if (layoutCount(m.weights) === null) return 'weights is not a tensor layout';
  if (layoutCount(m.buffers) === null) return 'buffers is not a tensor layout';
  if (typeof m.sha256 !== 'string') return 'sha256 is missing';
  if (m.format !== 'onepixel-checkpoint-1' && typeof m.dataset !== 'string')
    return 'dataset is not a fingerprint';
  return null;
}

function pack(parts: Tensorish[]): Buffer {
  const total = parts.reduce((a, p) => a + p.values.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p.values, o);
    o += p.values.length;
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

function unpack(bin: Buffer, layout: Array<{ name: string; shape: number[] }>, from: number) {
  const f = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  let o = from;
  const parts = layout.map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = f.subarray(o, o + n);
    o += n;
    return { name, shape, values };
  });
  return { parts, end: o };
}

export async function saveCheckpoint<C, H>(
  dir: string,
  meta: Omit<
    CheckpointMeta<C, H>,
    'format' | 'weights' | 'buffers' | 'sha256' | 'optimizerStep' | 'metaSha256'
  >,
  weights: Tensorish[],
  optimizer: SGDState,
): Promise<void> {
  const buffers: Tensorish[] = Object.entries(optimizer.buffers).map(([name, b]) => ({
    name,
    shape: b.shape,
    values: Float32Array.from(b.values),
  }));
  const bin = pack([...weights, ...buffers]);
  const full: CheckpointMeta<C, H> = {
    format: 'onepixel-checkpoint-2',
    ...meta,
    optimizerStep: optimizer.step,
    weights: weights.map(({ name, shape }) => ({ name, shape })),
    buffers: buffers.map(({ name, shape }) => ({ name, shape })),
    sha256: sha256(bin),
  };
  full.metaSha256 = metaChecksum(full);
  // A failed write (a full disk) removes the temporary folder and keeps the earlier checkpoint.
  await writeAtomically(dir, async (tmp) => {
    await writeFile(join(tmp, 'weights.bin'), bin);
    await writeFile(join(tmp, 'checkpoint.json'), JSON.stringify(full) + '\n');
  });
}

export interface LoadedCheckpoint<C, H> {
  meta: CheckpointMeta<C, H>;
  weights: Tensorish[];
  optimizer: SGDState;
}

/**
 * Loads the checkpoint in `dir`, checking both files; anything wrong (a file missing, unreadable,
 * damaged, of the wrong shape or size) fails with one line naming the file and the fault.
 */
export async function loadCheckpoint<C, H>(dir: string): Promise<LoadedCheckpoint<C, H>> {
  const jsonFile = join(dir, 'checkpoint.json');
  const binFile = join(dir, 'weights.bin');
  const m = await readCheckedJson(jsonFile, ['onepixel-checkpoint-1']);
  const problem = shapeProblem(m);
  if (problem) fail(`${jsonFile}: damaged checkpoint (${problem}); refusing it`);
  const meta = m as unknown as CheckpointMeta<C, H>;
  const count = (layoutCount(meta.weights) ?? 0) + (layoutCount(meta.buffers) ?? 0);
  let bin: Buffer;
  try {
    const size = (await stat(binFile)).size;
    if (size !== count * 4)
      fail(
        `${binFile}: ${size} bytes, checkpoint.json expects ${count * 4}; damaged checkpoint, refusing it`,
      );
    bin = await readFile(binFile);
  } catch (e) {
    if (e instanceof OnepixelError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    fail(
      `${binFile}: ${code === 'ENOENT' ? 'missing' : `unreadable (${code ?? (e as Error).message})`}; damaged checkpoint, refusing it`,
    );
  }
  if (bin.length !== count * 4)
    fail(`${binFile}: ${bin.length} bytes, expected ${count * 4}; damaged checkpoint, refusing it`);
  if (sha256(bin) !== meta.sha256)
    fail(
      `${binFile}: corrupt checkpoint (sha256 differs from checkpoint.json); refusing to load it`,
    );
  const w = unpack(bin, meta.weights, 0);
  const b = unpack(bin, meta.buffers, w.end);
  const buffers: SGDState['buffers'] = {};
  for (const p of b.parts) buffers[p.name] = { shape: p.shape, values: Array.from(p.values) };
  return { meta, weights: w.parts, optimizer: { step: meta.optimizerStep, buffers } };
}

/** The differences between a saved and a requested config, one line each (empty: none). */
export function configDifferences<C extends object>(
  saved: C,
  now: C,
  mayChange: ReadonlySet<string> = new Set(),
): string[] {
  const a = saved as Record<string, unknown>;
  const b = now as Record<string, unknown>;
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (mayChange.has(k)) continue;
    const x = JSON.stringify(a[k]);
    const y = JSON.stringify(b[k]);
    if (x !== y) out.push(`${k}: checkpoint ${x ?? '(none)'}, now ${y ?? '(none)'}`);
  }
  return out;
}
