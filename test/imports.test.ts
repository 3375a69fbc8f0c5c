/**
 * The import direction of src/ (docs: the README's "Architecture"): every relative `import … from`,
 * `export … from`, `import '…'` and `import('…')` of the .ts sources, read with a regular
 * expression, gives a graph of files and one of layers (a top-level folder of src/, or a top-level
 * file by its name). Each layer may import only the layers its row of {@link ALLOWED} names; the
 * layers form no cycle; and no file of src/noise or src/train is in an import cycle. Type-only
 * imports count (a type is a dependency too). A worker's `new URL('./x.js', import.meta.url)` is
 * not an import and does not count.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Compiled to dist/test/: the sources are two folders up. */
const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/**
 * The floor: errors, the version, output.ts (files on disk: atomic writes, the abort flag), and
 * shard.ts (which part of a job a `--shard I/N` copy does).
 */
const BOTTOM = ['errors', 'version', 'output', 'verbose', 'shard'];
const NN = ['nn', 'data', ...BOTTOM];
/**
 * Which layers each layer may import (its own is always allowed). `cli` is on top, then `index`
 * (the library API); `audit` over `train`; `protect` (src/protect.ts and the src/protect/ folder
 * it is becoming) over `noise` and `shortcut`; `train` and `noise` over `nn` and `transforms`,
 * siblings that never import each other; `data`, `errors` and `version` at the bottom.
 */
const ALLOWED: Record<string, readonly string[]> = {
  cli: [
    'index',
    'slurm',
    'audit',
    'protect',
    'inspect',
    'output',
    'manifest',
    'train',
    'noise',
    'shortcut',
    'transforms',
    ...NN,
  ],
  index: [
    'audit',
    'protect',
    'inspect',
    'manifest',
    'train',
    'noise',
    'shortcut',
    'transforms',
    ...NN,
  ],
  audit: ['train', 'manifest', 'output', 'transforms', ...NN],
  protect: ['noise', 'shortcut', 'manifest', 'output', 'transforms', ...NN],
  inspect: ['manifest', 'output', 'data', ...BOTTOM],
  train: ['manifest', 'transforms', 'output', ...NN],
  noise: ['transforms', 'output', ...NN],
  /** The manifest records a protection: the OPS pixels' and EM's config types. */
  manifest: ['shortcut', 'noise', 'data', ...BOTTOM],
  shortcut: ['data', ...BOTTOM],
  transforms: ['data', ...BOTTOM],
  output: ['errors'],
  shard: ['errors'],
  /** sbatch scripts of the sharded jobs: text only, no onepixel layer. */
  slurm: [],
  verbose: [],
  nn: NN,
  data: BOTTOM,
  errors: [],
  version: [],
};

/** Files that belong to another layer than their folder says (until they move there). */
const LAYER_OF_FILE: Record<string, string> = {
  // The noise methods' protect job, being moved into src/protect/.
  'noise/protect.ts': 'protect',
};

/** src-relative path (forward slashes) → source text. */
type Sources = Map<string, string>;

function readSources(root: string): Sources {
  const out: Sources = new Map();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
        out.set(path.relative(root, p).split(path.sep).join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(root);
  return out;
}

const SPECIFIERS = [
  /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*'([^']+)'/g,
  /\bimport\s*'([^']+)'/g,
  /\bimport\(\s*'([^']+)'\s*\)/g,
];

/** The src files a file imports (relative specifiers only; packages are not in the graph). */
function importsOf(file: string, text: string): string[] {
  const found = new Set<string>();
  for (const re of SPECIFIERS)
    for (const m of text.matchAll(re)) {
      const spec = m[1];
      if (!spec.startsWith('.')) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      found.add(target.replace(/\.js$/, '.ts'));
    }
  return [...found];
}

function layerOf(file: string): string {
  if (file in LAYER_OF_FILE) return LAYER_OF_FILE[file];
  const slash = file.indexOf('/');
  return slash < 0 ? file.replace(/\.ts$/, '') : file.slice(0, slash);
}

/** Cycles of a directed graph: its strongly connected components with more than one node. */
function cycles(edges: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

interface ImportReport {
  files: number;
  edges: number;
  /** `from → to (layer → layer)` for each import the table forbids, or that names no file. */
  violations: string[];
  layerCycles: string[][];
  /** Import cycles holding a file of src/noise or src/train. */
  fileCycles: string[][];
}

function checkImports(sources: Sources): ImportReport {
  const fileEdges = new Map<string, Set<string>>();
  const layerEdges = new Map<string, Set<string>>();
  const violations: string[] = [];
  let count = 0;
  for (const [file, text] of sources) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    if (allowed === undefined) violations.push(`${file}: layer '${from}' is not in the table`);
    const targets = new Set<string>();
    for (const target of importsOf(file, text)) {
      count++;
      if (!sources.has(target)) {
        violations.push(`${file} → ${target}: no such file in src/`);
        continue;
      }
      targets.add(target);
      const to = layerOf(target);
      if (to === from) continue;
      if (!layerEdges.has(from)) layerEdges.set(from, new Set());
      layerEdges.get(from)!.add(to);
      if (allowed !== undefined && !allowed.includes(to))
        violations.push(`${file} → ${target} (${from} may not import ${to})`);
    }
    fileEdges.set(file, targets);
  }
  const inNoiseOrTrain = (f: string) => f.startsWith('noise/') || f.startsWith('train/');
  return {
    files: sources.size,
    edges: count,
    violations,
    layerCycles: cycles(layerEdges),
    fileCycles: cycles(fileEdges).filter((c) => c.some(inNoiseOrTrain)),
  };
}

test('src/ imports go down only, with no cycle between layers or in noise/ and train/', () => {
  const sources = readSources(SRC);
  const r = checkImports(sources);
  // The graph was read: the sources are there and known imports were found.
  assert.ok(r.files > 50, `only ${r.files} files read from ${SRC}`);
  assert.ok(importsOf('train/loop.ts', sources.get('train/loop.ts')!).includes('nn/pgd.ts'));
  assert.ok(importsOf('noise/em.ts', sources.get('noise/em.ts')!).includes('nn/rng.ts'));
  assert.deepEqual(r.violations, []);
  assert.deepEqual(r.layerCycles, []);
  assert.deepEqual(r.fileCycles, []);
});

test('the check catches an upward import, a sibling import, a layer cycle and a file cycle', () => {
  const planted: Sources = new Map([
    ['errors.ts', 'export const x = 1;\n'],
    ['nn/rng.ts', "import { fail } from '../errors.js';\n"],
    ['nn/bad.ts', "import type { A } from '../train/loop.js';\n"],
    ['train/loop.ts', "import { Rng } from '../nn/rng.js';\nexport * from './b.js';\n"],
    ['train/b.ts', "import { loop } from './loop.js';\n"],
    ['noise/em.ts', "const m = await import('../train/loop.js');\n"],
    ['data/x.ts', "import '../nope.js';\n"],
    ['zzz.ts', ''],
  ]);
  const r = checkImports(planted);
  assert.equal(r.files, 8);
  assert.equal(r.edges, 7);
  assert.deepEqual(r.violations.sort(), [
    'data/x.ts → nope.ts: no such file in src/',
    'nn/bad.ts → train/loop.ts (nn may not import train)',
    'noise/em.ts → train/loop.ts (noise may not import train)',
    "zzz.ts: layer 'zzz' is not in the table",
  ]);
  assert.deepEqual(r.layerCycles, [['nn', 'train']]);
  assert.deepEqual(r.fileCycles, [['train/b.ts', 'train/loop.ts']]);
});
