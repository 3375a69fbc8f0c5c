/** manifest.json: what was protected, how, with which pixels, from which exact input files. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from './errors.js';
import type { SourceFile } from './data/dataset.js';
import type { DatasetKind, OutputFormat } from './data/formats.js';
import type { EmConfig, EmRound } from './noise/em.js';
import type { ClassPixels, Objective } from './shortcut/search.js';
import { VERSION } from './version.js';

/** Protection methods: `cifar10s` is EM noise with the OPS pixel written over it (spec §3). */
export const METHODS = ['ops', 'em', 'cifar10s', 'random-noise'] as const;
export type Method = (typeof METHODS)[number];

/** The noise of a noise method, saved beside the data as float32 N×H×W×C in [0, 1] units. */
export interface NoiseRecord {
  file: string;
  shape: number[];
  epsilon: number;
  /** How it was made: generated here (`em`, `random`) or read from a file (`file`, with `from`). */
  generator: 'em' | 'random' | 'file';
  from?: string;
  seed?: number;
  /** Class-wise EM: the K×H×W×C class noises, in this file. */
  classNoiseFile?: string;
  em?: {
    config: EmConfig;
    rounds: number;
    finalAccuracy: number;
    stoppedBy: 'accuracy' | 'max-rounds';
    seconds: number;
    backend: string;
    workers: number;
    history: EmRound[];
  };
}

export interface Manifest {
  method: Method;
  /** The OPS search objective; null for methods without a pixel (em, random-noise). */
  objective: Objective | null;
  /** 0 for methods without a pixel. */
  pixelsPerClass: number;
  height: number;
  width: number;
  channels: number;
  classes: ClassPixels[];
  source: { dataset: DatasetKind; dataDir: string; files: SourceFile[] };
  output: { format: OutputFormat; train: number; test: number | null };
  noise?: NoiseRecord;
  version: string;
}

/** How a report names a protected set: the method, as in the paper's Table 5. */
export function methodLabel(m: Manifest): string {
  switch (m.method) {
    case 'ops':
      return 'OPS';
    case 'em':
      return m.noise?.em?.config.mode === 'classwise' ? 'EM (class-wise)' : 'EM';
    case 'cifar10s':
      return m.source.dataset === 'cifar10' || m.source.dataset === 'cifar10-python'
        ? 'CIFAR-10-S'
        : 'EM + OPS';
    case 'random-noise':
      return 'random noise';
  }
}

export const MANIFEST = 'manifest.json';

/** JSON has no Infinity: a zero-spread winner's score is written as the string "Infinity". */
export const infinityReplacer = (_k: string, v: unknown): unknown =>
  v === Infinity ? 'Infinity' : v;

export function manifestJson(
  m: Omit<Manifest, 'version' | 'method'> & { method?: Method },
): string {
  const full: Manifest = { method: 'ops', ...m, version: VERSION };
  return JSON.stringify(full, infinityReplacer, 2) + '\n';
}

export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    fail(`${path}: not found; is ${dir} a folder written by 'onepixel protect'?`);
  }
  return parseManifest(text, path);
}

/** Parses manifest text (`path` names it in errors), restoring Infinity scores. */
export function parseManifest(text: string, path: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(text, (_k, v) => (v === 'Infinity' ? Infinity : v)) as Manifest;
  } catch (e) {
    fail(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!METHODS.includes(m.method) || !Array.isArray(m.classes) || !m.output || !m.source)
    fail(
      `${path}: not an onepixel manifest (method ${METHODS.join('/')}, classes, source, output expected)`,
    );
  return m;
}
