/**
 * EM checkpoints, so a long generation survives a kill: one folder holding `em.json` (config,
 * progress, history, the dataset's fingerprint, the sha256 of the noise), `noise.bin` (float32)
 * and `surrogate/` (weights and SGD momentum, ../nn/checkpoint.ts). The whole folder is written
 * under a temporary name and renamed, so a checkpoint is either the old one or the new one.
 * `em.json` carries `metaSha256` over its own content: a damaged file in the folder is refused
 * with one line naming it, never taken for "no checkpoint".
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { sha256 } from '../data/files.js';
import { exists, writeAtomically } from '../output.js';
import {
  canonicalJson,
  configDifferences as differences,
  loadCheckpoint,
  metaChecksum,
  readCheckedJson,
  saveCheckpoint,
} from '../nn/checkpoint.js';
import type { EmConfig, EmSnapshot, EmState } from './em.js';

interface EmMeta {
  format: 'onepixel-em-checkpoint-1';
  config: EmConfig;
  state: EmState;
  /** sha256 of the training images and labels the noise belongs to. */
  dataset: string;
  noiseSha256: string;
  noiseLength: number;
  metaSha256?: string;
}

export async function saveEmCheckpoint(dir: string, snap: EmSnapshot, dataset: string) {
  // A failed write (a full disk) removes the temporary folder and keeps the earlier checkpoint.
  const noise = Buffer.from(snap.noise.buffer, snap.noise.byteOffset, snap.noise.byteLength);
  await writeAtomically(dir, async (tmp) => {
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
        dataset,
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
    meta.metaSha256 = metaChecksum(meta);
    await writeFile(join(tmp, 'em.json'), JSON.stringify(meta, null, 1) + '\n');
  });
}

/** Keys whose change a resume accepts: raising the round limit continues a finished run. */
const MAY_CHANGE: ReadonlySet<string> = new Set<keyof EmConfig>(['maxRounds']);

/** The differences between a saved and a requested config, one line each (empty: none). */
export function configDifferences(saved: EmConfig, now: EmConfig): string[] {
  return differences(saved, now, MAY_CHANGE);
}

const isCount = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;

/** What is wrong with a parsed em.json's shape, or null when nothing. */
function shapeProblem(m: Record<string, unknown>): string | null {
  if (m.format !== 'onepixel-em-checkpoint-1')
    return `format ${JSON.stringify(m.format)} is not an onepixel EM checkpoint`;
  if (m.config === null || typeof m.config !== 'object') return 'config is missing';
  const st = m.state as Record<string, unknown> | null;
  if (st === null || typeof st !== 'object') return 'state is missing';
  for (const k of ['round', 'batch', 'trainPass', 'trainCursor'])
    if (!isCount(st[k])) return `state.${k} is not a count`;
  if (typeof st.trained !== 'boolean') return 'state.trained is not true/false';
  if (!Array.isArray(st.history)) return 'state.history is not a list';
  if (![null, 'accuracy', 'max-rounds'].includes(st.stopped as string))
    return 'state.stopped is not a stopping rule';
  for (const k of ['trainLoss', 'seconds', 'roundStarted'])
    if (typeof st[k] !== 'number') return `state.${k} is not a number`;
  if (typeof m.dataset !== 'string') return 'dataset is not a fingerprint';
  if (typeof m.noiseSha256 !== 'string') return 'noiseSha256 is missing';
  if (!isCount(m.noiseLength)) return 'noiseLength is not a count';
  return null;
}

/**
 * Loads a checkpoint for `config` on the dataset with fingerprint `dataset` (whose noise has
 * `noiseLength` values); null when `dir` does not exist. Refuses one made with other settings
 * (listing them), for other data, or damaged in any of its files (naming the file).
 */
export async function loadEmCheckpoint(
  dir: string,
  config: EmConfig,
  dataset: string,
  noiseLength?: number,
): Promise<EmSnapshot | null> {
  if (!(await exists(dir))) return null;
  const jsonFile = join(dir, 'em.json');
  const m = await readCheckedJson(jsonFile, ['onepixel-em-checkpoint-1']);
  const problem = shapeProblem(m);
  if (problem) fail(`${jsonFile}: damaged checkpoint (${problem}); refusing it`);
  const meta = m as unknown as EmMeta;
  const diff = configDifferences(meta.config, config);
  if (diff.length > 0)
    fail(
      `${dir}: cannot resume, the checkpoint was made with other parameters:\n  ` +
        diff.join('\n  ') +
        `\n(use the same parameters, or --force to discard the checkpoint and start over)`,
    );
  if (meta.dataset !== dataset)
    fail(`${dir}: cannot resume, the checkpoint belongs to another training set (sha256 differs)`);
  if (noiseLength !== undefined && meta.noiseLength !== noiseLength)
    fail(
      `${jsonFile}: noiseLength ${meta.noiseLength}, this data needs ${noiseLength}; refusing it`,
    );
  const binFile = join(dir, 'noise.bin');
  const size = await stat(binFile).then(
    (st) => st.size,
    (e: NodeJS.ErrnoException) =>
      fail(
        `${binFile}: ${e.code === 'ENOENT' ? 'missing' : `unreadable (${e.code})`}; damaged checkpoint, refusing it`,
      ),
  );
  if (size !== meta.noiseLength * 4)
    fail(
      `${binFile}: ${size} bytes, em.json expects ${meta.noiseLength * 4}; damaged checkpoint, refusing it`,
    );
  const bin = await readFile(binFile);
  if (bin.length !== meta.noiseLength * 4 || sha256(bin) !== meta.noiseSha256)
    fail(`${binFile}: damaged (size or sha256 differs from em.json); refusing to resume`);
  const noise = new Float32Array(meta.noiseLength);
  new Uint8Array(noise.buffer).set(bin);
  const ck = await loadCheckpoint<EmConfig, unknown>(join(dir, 'surrogate'));
  if (
    canonicalJson(ck.meta.config) !== canonicalJson(meta.config) ||
    ck.meta.epoch !== meta.state.round ||
    ck.meta.step !== meta.state.batch ||
    (ck.meta.dataset !== undefined && ck.meta.dataset !== meta.dataset)
  )
    fail(
      `${dir}/surrogate/checkpoint.json: does not belong to em.json (other config or progress); refusing it`,
    );
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
