/** manifest.json: what was protected, how, with which pixels, from which exact input files. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from './errors.js';
import type { SourceFile } from './data/dataset.js';
import type { DatasetKind, OutputFormat } from './data/formats.js';
import type { ClassPixels, Objective } from './shortcut/search.js';
import { VERSION } from './version.js';

export interface Manifest {
  method: 'ops';
  objective: Objective;
  pixelsPerClass: number;
  height: number;
  width: number;
  channels: number;
  classes: ClassPixels[];
  source: { dataset: DatasetKind; dataDir: string; files: SourceFile[] };
  output: { format: OutputFormat; train: number; test: number | null };
  version: string;
}

export const MANIFEST = 'manifest.json';

/** JSON has no Infinity: a zero-spread winner's score is written as the string "Infinity". */
export const infinityReplacer = (_k: string, v: unknown): unknown =>
  v === Infinity ? 'Infinity' : v;

export function manifestJson(m: Omit<Manifest, 'version' | 'method'>): string {
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
  if (m.method !== 'ops' || !Array.isArray(m.classes) || !m.output || !m.source)
    fail(`${path}: not an onepixel OPS manifest (method, classes, source, output expected)`);
  return m;
}
