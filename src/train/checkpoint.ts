/**
 * Training checkpoints: `checkpoint.json` (progress, config, history, layout) and `weights.bin`
 * (model weights, then the optimiser's momentum buffers, float32), written under a temporary
 * name and renamed, with the sha256 of the binary so a damaged checkpoint is refused, not loaded.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { sha256 } from '../data/files.js';
import { replaceDir } from '../output.js';
import type { SGDState } from '../nn/optim.js';
import type { RngState } from './rng.js';

/** The file that proves a folder is a checkpoint onepixel wrote. */
export const CHECKPOINT_MARKER = 'checkpoint.json';

export interface Tensorish {
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface CheckpointMeta<C, H> {
  format: 'onepixel-checkpoint-1';
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
  meta: Omit<CheckpointMeta<C, H>, 'format' | 'weights' | 'buffers' | 'sha256' | 'optimizerStep'>,
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
    format: 'onepixel-checkpoint-1',
    ...meta,
    optimizerStep: optimizer.step,
    weights: weights.map(({ name, shape }) => ({ name, shape })),
    buffers: buffers.map(({ name, shape }) => ({ name, shape })),
    sha256: sha256(bin),
  };
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, 'weights.bin'), bin);
  await writeFile(join(tmp, 'checkpoint.json'), JSON.stringify(full) + '\n');
  await replaceDir(tmp, dir);
}

export interface LoadedCheckpoint<C, H> {
  meta: CheckpointMeta<C, H>;
  weights: Tensorish[];
  optimizer: SGDState;
}

export async function loadCheckpoint<C, H>(dir: string): Promise<LoadedCheckpoint<C, H>> {
  let meta: CheckpointMeta<C, H>;
  let bin: Buffer;
  try {
    meta = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as CheckpointMeta<C, H>;
    bin = await readFile(join(dir, 'weights.bin'));
  } catch (e) {
    fail(`${dir}: not a readable checkpoint (${(e as Error).message})`);
  }
  if (meta.format !== 'onepixel-checkpoint-1') fail(`${dir}: not an onepixel checkpoint`);
  if (sha256(bin) !== meta.sha256)
    fail(
      `${dir}/weights.bin: corrupt checkpoint (sha256 differs from checkpoint.json); refusing to load it`,
    );
  const count = [...meta.weights, ...meta.buffers].reduce(
    (a, w) => a + w.shape.reduce((x, y) => x * y, 1),
    0,
  );
  if (bin.length !== count * 4)
    fail(`${dir}/weights.bin: ${bin.length} bytes, expected ${count * 4}`);
  const w = unpack(bin, meta.weights, 0);
  const b = unpack(bin, meta.buffers, w.end);
  const buffers: SGDState['buffers'] = {};
  for (const p of b.parts) buffers[p.name] = { shape: p.shape, values: Array.from(p.values) };
  return { meta, weights: w.parts, optimizer: { step: meta.optimizerStep, buffers } };
}
