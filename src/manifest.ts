/** manifest.json: what was protected, how, with which pixels, from which exact input files. */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, OnepixelError } from './errors.js';
import type { SourceFile } from './data/dataset.js';
import { DATASETS, type DatasetKind, FORMATS, type OutputFormat } from './data/formats.js';
import type { EmConfig, EmRound } from './noise/em-config.js';
import { type ClassPixels, type Objective, OBJECTIVES } from './shortcut/search.js';
import { VERSION } from './version.js';

/** Protection methods: `cifar10s` is the paper's CIFAR-10-S: EM noise, the OPS pixel over it. */
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

/** A rectangle of the full-size image (rows top…top+height−1, columns left…left+width−1). */
export interface PixelBlock {
  top: number;
  left: number;
  height: number;
  width: number;
}

/**
 * OPS that knows the trainer's pipeline (src/protect/ops-pipeline.ts): the pixels of `classes`
 * are rows and columns of the searchHeight×searchWidth image the trainer sees after `pipeline`,
 * and each is written into the full-size image as `blocks[label][k]`.
 */
export interface PipelineRecord {
  /** The trainer's resize, `resize:S:interp`. */
  pipeline: string;
  searchHeight: number;
  searchWidth: number;
  /** Pixels added to every side of each block beyond the filter's support. */
  blockMargin: number;
  blocks: PixelBlock[][];
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
  /** Present when OPS searched at the trainer's resolution and wrote blocks (--pipeline). */
  pipeline?: PipelineRecord;
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

/** Larger than any manifest onepixel writes (a few MB with 1000 classes of many pixels). */
const MAX_MANIFEST_BYTES = 256 << 20;

export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST);
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile())
      fail(`${path}: not a file; is ${dir} a folder written by 'onepixel protect'?`);
    if (st.size > MAX_MANIFEST_BYTES)
      fail(`${path}: ${st.size} bytes, more than a manifest can be (${MAX_MANIFEST_BYTES})`);
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof OnepixelError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      fail(`${path}: not found; is ${dir} a folder written by 'onepixel protect'?`);
    fail(`${path}: cannot be read (${(e as Error).message})`);
  }
  return parseManifest(text, path);
}

/**
 * Parses manifest text (`path` names it in errors), restoring Infinity scores, and checks its
 * whole shape (validateManifest): every reader of manifest.json goes through here.
 */
export function parseManifest(text: string, path: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text, (_k, v: unknown) => (v === 'Infinity' ? Infinity : v));
  } catch (e) {
    fail(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return validateManifest(raw, path);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number') return String(v);
  const text = JSON.stringify(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Field checks that fail naming the file and the field (`classes[3].pixels[0].row`). */
function checker(file: string) {
  const bad = (field: string, expected: string, got: unknown): never =>
    fail(`${file}: ${field}: expected ${expected}, got ${show(got)}`);
  const c = {
    obj(v: unknown, field: string): Record<string, unknown> {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(field, 'an object', v);
      return v as Record<string, unknown>;
    },
    arr(v: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): unknown[] {
      if (!Array.isArray(v)) bad(field, 'an array', v);
      const a = v as unknown[];
      if (a.length < min || a.length > max)
        bad(
          field,
          `an array of ${min === max ? min : `${min} to ${max}`} entries`,
          `${a.length} entries`,
        );
      return a;
    },
    int(v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
        bad(
          field,
          max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in ${min}..${max}`,
          v,
        );
      return v as number;
    },
    num(v: unknown, field: string, min = -Infinity, max = Infinity): number {
      if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max)
        bad(field, `a number in [${min}, ${max}]`, v);
      return v as number;
    },
    str(v: unknown, field: string): string {
      if (typeof v !== 'string') bad(field, 'a string', v);
      return v as string;
    },
    oneOf<T>(v: unknown, field: string, valid: readonly T[]): T {
      if (!valid.includes(v as T)) bad(field, `one of ${valid.map((x) => show(x)).join(', ')}`, v);
      return v as T;
    },
    /** A file name inside the protected folder: no folders, no `..`. */
    name(v: unknown, field: string): string {
      const s = c.str(v, field);
      if (s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s))
        bad(field, 'a file name in the folder', v);
      return s;
    },
  };
  return c;
}

/** Largest side and class count a manifest may state (far beyond any dataset). */
const MAX_SIDE = 1 << 16;
const MAX_CLASSES = 100_000;

/**
 * Checks that `raw` (parsed JSON) is a whole manifest: every field present with its type and range,
 * pixels inside the image with values of 0 or 255 per channel, labels in order. Fails with one line
 * naming the file and the field; returns it typed.
 */
export function validateManifest(raw: unknown, file: string): Manifest {
  const c = checker(file);
  const m = c.obj(raw, 'manifest');
  const method = c.oneOf(m.method, 'method', METHODS);
  const objective = m.objective === null ? null : c.oneOf(m.objective, 'objective', OBJECTIVES);
  if (method === 'ops' && objective === null) c.oneOf(m.objective, 'objective', OBJECTIVES);
  const height = c.int(m.height, 'height', 1, MAX_SIDE);
  const width = c.int(m.width, 'width', 1, MAX_SIDE);
  const channels = c.oneOf(m.channels, 'channels', [1, 3]);
  const k = c.int(m.pixelsPerClass, 'pixelsPerClass', 0, height * width);
  const classes = c.arr(m.classes, 'classes', 1, MAX_CLASSES);
  classes.forEach((raw, i) => {
    const at = `classes[${i}]`;
    const cls = c.obj(raw, at);
    c.int(cls.label, `${at}.label`, i, i);
    c.str(cls.name, `${at}.name`);
    c.int(cls.count, `${at}.count`, 0);
    c.arr(cls.pixels, `${at}.pixels`, k, k).forEach((raw, j) => {
      const pat = `${at}.pixels[${j}]`;
      const p = c.obj(raw, pat);
      c.int(p.row, `${pat}.row`, 0, height - 1);
      c.int(p.col, `${pat}.col`, 0, width - 1);
      c.arr(p.value, `${pat}.value`, channels, channels).forEach((v, ch) =>
        c.oneOf(v, `${pat}.value[${ch}]`, [0, 255]),
      );
      c.num(p.score, `${pat}.score`);
      if (p.overwritten !== undefined) c.oneOf(p.overwritten, `${pat}.overwritten`, [true, false]);
    });
  });
  const source = c.obj(m.source, 'source');
  c.oneOf(source.dataset, 'source.dataset', DATASETS);
  c.str(source.dataDir, 'source.dataDir');
  c.arr(source.files, 'source.files').forEach((raw, i) => {
    const f = c.obj(raw, `source.files[${i}]`);
    c.str(f.path, `source.files[${i}].path`);
    c.int(f.bytes, `source.files[${i}].bytes`, 0);
    if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256))
      c.oneOf(f.sha256, `source.files[${i}].sha256`, ['<64 hex digits>']);
  });
  const output = c.obj(m.output, 'output');
  c.oneOf(output.format, 'output.format', FORMATS);
  c.int(output.train, 'output.train', 1);
  if (output.test !== null) c.int(output.test, 'output.test', 0);
  if (m.noise !== undefined) validateNoise(c, c.obj(m.noise, 'noise'));
  if (m.pipeline !== undefined)
    validatePipeline(c, c.obj(m.pipeline, 'pipeline'), height, width, classes.length, k);
  c.str(m.version, 'version');
  return m as unknown as Manifest;
}

function validatePipeline(
  c: ReturnType<typeof checker>,
  p: Record<string, unknown>,
  height: number,
  width: number,
  classes: number,
  k: number,
): void {
  c.str(p.pipeline, 'pipeline.pipeline');
  c.int(p.searchHeight, 'pipeline.searchHeight', 1, height);
  c.int(p.searchWidth, 'pipeline.searchWidth', 1, width);
  c.int(p.blockMargin, 'pipeline.blockMargin', 0);
  c.arr(p.blocks, 'pipeline.blocks', classes, classes).forEach((raw, i) =>
    c.arr(raw, `pipeline.blocks[${i}]`, k, k).forEach((rb, j) => {
      const at = `pipeline.blocks[${i}][${j}]`;
      const b = c.obj(rb, at);
      const top = c.int(b.top, `${at}.top`, 0, height - 1);
      const left = c.int(b.left, `${at}.left`, 0, width - 1);
      c.int(b.height, `${at}.height`, 1, height - top);
      c.int(b.width, `${at}.width`, 1, width - left);
    }),
  );
}

function validateNoise(c: ReturnType<typeof checker>, n: Record<string, unknown>): void {
  c.name(n.file, 'noise.file');
  c.arr(n.shape, 'noise.shape', 1, 8).forEach((d, i) => c.int(d, `noise.shape[${i}]`, 0));
  c.num(n.epsilon, 'noise.epsilon', 0, 1);
  c.oneOf(n.generator, 'noise.generator', ['em', 'random', 'file']);
  if (n.from !== undefined) c.str(n.from, 'noise.from');
  if (n.seed !== undefined) c.int(n.seed, 'noise.seed', -Number.MAX_SAFE_INTEGER);
  if (n.classNoiseFile !== undefined) c.name(n.classNoiseFile, 'noise.classNoiseFile');
  if (n.em === undefined) return;
  const em = c.obj(n.em, 'noise.em');
  const config = c.obj(em.config, 'noise.em.config');
  c.oneOf(config.mode, 'noise.em.config.mode', ['samplewise', 'classwise']);
  for (const [key, v] of Object.entries(config))
    if (key !== 'mode' && typeof v !== 'string') c.num(v, `noise.em.config.${key}`);
  c.int(em.rounds, 'noise.em.rounds', 0);
  c.num(em.finalAccuracy, 'noise.em.finalAccuracy', 0, 1);
  c.oneOf(em.stoppedBy, 'noise.em.stoppedBy', ['accuracy', 'max-rounds']);
  c.num(em.seconds, 'noise.em.seconds', 0);
  c.str(em.backend, 'noise.em.backend');
  c.int(em.workers, 'noise.em.workers', 1);
  c.arr(em.history, 'noise.em.history').forEach((raw, i) => {
    const r = c.obj(raw, `noise.em.history[${i}]`);
    c.int(r.round, `noise.em.history[${i}].round`, 0);
    // A diverged loss is NaN, which JSON writes as null.
    for (const key of ['trainLoss', 'loss', 'accuracy', 'seconds'])
      if (r[key] !== null) c.num(r[key], `noise.em.history[${i}].${key}`);
  });
}
