/**
 * EM checkpoints, so a long generation survives a kill: one folder holding `em.json` (config,
 * progress, history, the dataset's fingerprint, the sha256 of the noise), `noise.bin` (float32)
 * and `surrogate/` (weights and SGD momentum, ../train/checkpoint.ts). The whole folder is written
 * under a temporary name and renamed, so a checkpoint is either the old one or the new one.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { sha256 } from '../data/files.js';
import { replaceDir } from '../output.js';
import { loadCheckpoint, saveCheckpoint } from '../train/checkpoint.js';
import type { EmConfig, EmSnapshot, EmState } from './em.js';

interface EmMeta {
  format: 'onepixel-em-checkpoint-1';
  config: EmConfig;
  state: EmState;
  /** sha256 of the training images and labels the noise belongs to. */
  dataset: string;
  noiseSha256: string;
  noiseLength: number;
}

export async function saveEmCheckpoint(dir: string, snap: EmSnapshot, dataset: string) {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const noise = Buffer.from(snap.noise.buffer, snap.noise.byteOffset, snap.noise.byteLength);
  await writeFile(join(tmp, 'noise.bin'), noise);
  await saveCheckpoint(
    join(tmp, 'surrogate'),
    {
      config: snap.config,
      epoch: snap.state.round,
      step: snap.state.batch,
      rng: { s: [0, 0, 0, 0], spare: null },
      running: { loss: 0, correct: 0, seen: 0, seconds: snap.state.seconds },
      history: snap.state.history,
    },
    snap.weights,
    snap.optimizer,
  );
  const meta: EmMeta = {
    format: 'onepixel-em-checkpoint-1',
    config: snap.config,
    state: snap.state,
    dataset,
    noiseSha256: sha256(noise),
    noiseLength: snap.noise.length,
  };
  await writeFile(join(tmp, 'em.json'), JSON.stringify(meta, null, 1) + '\n');
  await replaceDir(tmp, dir);
}

/** Keys whose change a resume accepts: raising the round limit continues a finished run. */
const MAY_CHANGE = new Set<keyof EmConfig>(['maxRounds']);

/** The differences between a saved and a requested config, one line each (empty: none). */
export function configDifferences(saved: EmConfig, now: EmConfig): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]) as Set<keyof EmConfig>;
  const out: string[] = [];
  for (const k of keys) {
    if (MAY_CHANGE.has(k)) continue;
    const a = JSON.stringify(saved[k]);
    const b = JSON.stringify(now[k]);
    if (a !== b) out.push(`${k}: checkpoint ${a}, now ${b}`);
  }
  return out;
}

/**
 * Loads a checkpoint for `config` on the dataset with fingerprint `dataset`; null when `dir`
 * holds none. Refuses one made with other settings (listing them), for other data, or damaged.
 */
export async function loadEmCheckpoint(
  dir: string,
  config: EmConfig,
  dataset: string,
): Promise<EmSnapshot | null> {
  let meta: EmMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, 'em.json'), 'utf8')) as EmMeta;
  } catch {
    return null;
  }
  if (meta.format !== 'onepixel-em-checkpoint-1') fail(`${dir}: not an onepixel EM checkpoint`);
  const diff = configDifferences(meta.config, config);
  if (diff.length > 0)
    fail(
      `${dir}: cannot resume, the checkpoint was made with other parameters:\n  ` +
        diff.join('\n  ') +
        `\n(use the same parameters, or --force to discard the checkpoint and start over)`,
    );
  if (meta.dataset !== dataset)
    fail(`${dir}: cannot resume, the checkpoint belongs to another training set (sha256 differs)`);
  const bin = await readFile(join(dir, 'noise.bin'));
  if (bin.length !== meta.noiseLength * 4 || sha256(bin) !== meta.noiseSha256)
    fail(`${dir}/noise.bin: damaged (size or sha256 differs from em.json); refusing to resume`);
  const noise = new Float32Array(meta.noiseLength);
  new Uint8Array(noise.buffer).set(bin);
  const ck = await loadCheckpoint<EmConfig, unknown>(join(dir, 'surrogate'));
  return {
    config: { ...meta.config, maxRounds: config.maxRounds },
    state: {
      ...meta.state,
      stopped:
        meta.state.round < config.maxRounds && meta.state.stopped === 'max-rounds'
          ? null
          : meta.state.stopped,
    },
    noise,
    weights: ck.weights,
    optimizer: ck.optimizer,
  };
}
