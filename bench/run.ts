/**
 * Benchmark of the OPS search and the protect job on real CIFAR-10, side by side with a numpy
 * transcription of the authors' search (bench/peer_ops_numpy.py).
 *
 *   npm run bench                      (build, then node dist/bench/run.js)
 *   node dist/bench/run.js [--quick] [--peer-classes N] [--data-dir DIR]
 *
 * --quick           skip the peer (the numpy search takes tens of seconds)
 * --peer-classes N  let the peer search only the first N classes and scale its time by 10/N
 * --data-dir DIR    CIFAR-10 binary folder (default <cwd>/../shared/data/cifar-10-batches-bin)
 *
 * Every measurement runs in its own child process, so that each peak RSS is that measurement's
 * own. A readable table goes to stderr; stdout gets one JSON object per line: the machine, then
 * one per measurement (name, seconds = median, minSeconds, peakRssMB, and for the measurement
 * compared with the peer: peer, peerSeconds, ratio = peerSeconds / seconds).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCifar10 } from '../src/data/cifar.js';
import { datasetStatsParallel } from '../src/shortcut/parallel-stats.js';
import { type Objective, selectPixels } from '../src/shortcut/search.js';

const SEARCH_WARMUP = 1;
const SEARCH_RUNS = 5;
const READ_RUNS = 3;
const PROTECT_RUNS = 3;
const CLASSES = 10;
const MB = 1024 * 1024;

/** Targets from the issue. */
const TARGET_SEARCH_S = 0.5;
const TARGET_PROTECT_S = 2;
/** Whole protect (read, search, write, manifest) against the peer's search alone (issue 11). */
const TARGET_PROTECT_VS_PEER = 15;

interface Pixel {
  label: number;
  row: number;
  col: number;
  value: number[];
  score?: number;
}

/** What a child process reports for one measurement. */
interface ChildReport {
  name: string;
  samples: number[];
  peakRssMB: number;
  /** The warm-up run: a cold process, as the CLI sees it. */
  firstRunSeconds?: number;
  /** Resident set after the read and a full GC, before anything is timed (search children). */
  rssAfterReadMB?: number;
  /** Highest resident set sampled while the timed searches ran. */
  searchPeakRssMB?: number;
  threads?: number;
  images?: number;
  datasetMB?: number;
  pixels?: Pixel[];
  /** Every timed run chose the same pixels. */
  stable?: boolean;
}

interface Measurement {
  name: string;
  seconds: number;
  minSeconds: number;
  runs: number;
  samples: number[];
  peakRssMB: number;
  [key: string]: unknown;
}

interface PeerReport {
  seconds: number;
  classesSearched: number;
  pixels: Array<Pixel & { tiesAtTop: number }>;
  numpy: string;
  python: string;
  peakRssMB: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));
const rssMB = (): number => process.memoryUsage.rss() / MB;
/** process.resourceUsage().maxRSS is in KiB. */
const peakMB = (): number => process.resourceUsage().maxRSS / 1024;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function arg(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Child side: one measurement in this process, one JSON line on stdout.

async function childRead(dataDir: string): Promise<ChildReport> {
  const t0 = performance.now();
  const splits = await readCifar10(dataDir);
  const seconds = (performance.now() - t0) / 1000;
  const images = splits.train.labels.length + (splits.test?.labels.length ?? 0);
  return { name: 'read', samples: [seconds], peakRssMB: peakMB(), images };
}

async function childSearch(
  name: string,
  dataDir: string,
  objective: Objective,
  threads: number,
): Promise<ChildReport> {
  const splits = await readCifar10(dataDir);
  const ds = splits.train;
  // The raw file buffers are only released by a second collection after a turn of the event loop.
  gc();
  await new Promise((r) => setTimeout(r, 100));
  gc();
  const rssAfterReadMB = rssMB();
  let searchPeak = rssAfterReadMB;
  const sample = (): void => {
    searchPeak = Math.max(searchPeak, rssMB());
  };
  const samples: number[] = [];
  let firstRun = 0;
  let first: string | null = null;
  let stable = true;
  let pixels: Pixel[] = [];
  for (let r = 0; r < SEARCH_WARMUP + SEARCH_RUNS; r++) {
    // The main thread only waits on the workers during the statistics pass: sample RSS meanwhile.
    const timer = setInterval(sample, 2);
    const t0 = performance.now();
    const stats = await datasetStatsParallel(ds, objective === 'paper', threads);
    sample();
    const result = selectPixels(stats, ds.classNames, { objective, pixels: 1 });
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(timer);
    sample();
    if (r >= SEARCH_WARMUP) samples.push(seconds);
    else if (r === 0) firstRun = seconds;
    pixels = result.classes.map((c) => ({
      label: c.label,
      row: c.pixels[0].row,
      col: c.pixels[0].col,
      value: c.pixels[0].value,
      score: c.pixels[0].score,
    }));
    const key = JSON.stringify(pixels.map((p) => [p.row, p.col, p.value]));
    if (first === null) first = key;
    else if (key !== first) stable = false;
  }
  return {
    name,
    samples,
    peakRssMB: peakMB(),
    firstRunSeconds: firstRun,
    rssAfterReadMB,
    searchPeakRssMB: searchPeak,
    threads,
    images: ds.labels.length,
    datasetMB: (ds.images.length + (splits.test?.images.length ?? 0)) / MB,
    pixels,
    stable,
  };
}

async function child(name: string, dataDir: string): Promise<void> {
  const cores = os.availableParallelism();
  let report: ChildReport;
  if (name === 'read') report = await childRead(dataDir);
  else if (name === 'search-official') report = await childSearch(name, dataDir, 'official', cores);
  else if (name === 'search-official-1thread')
    report = await childSearch(name, dataDir, 'official', 1);
  else if (name === 'search-paper') report = await childSearch(name, dataDir, 'paper', cores);
  else throw new Error(`unknown measurement '${name}'`);
  process.stdout.write(JSON.stringify(report) + '\n');
}

// ---------------------------------------------------------------------------------------------
// Parent side.

interface Spawned {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Spawned> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', rej);
    p.on('close', (code) =>
      res({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }),
    );
  });
}

function lastJsonLine<T>(text: string, what: string): T {
  const line = text
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (!line) throw new Error(`${what}: no JSON output`);
  return JSON.parse(line) as T;
}

async function measureInChild(self: string, name: string, dataDir: string): Promise<ChildReport> {
  const r = await run(process.execPath, ['--expose-gc', self, '--measure', name, dataDir]);
  if (r.code !== 0) throw new Error(`measurement ${name} failed (exit ${r.code}):\n${r.stderr}`);
  return lastJsonLine<ChildReport>(r.stdout, name);
}

function summarise(name: string, samples: number[], peakRssMB: number): Measurement {
  return {
    name,
    seconds: round(median(samples), 4),
    minSeconds: round(Math.min(...samples), 4),
    runs: samples.length,
    samples: samples.map((s) => round(s, 4)),
    peakRssMB: round(peakRssMB, 1),
  };
}

async function measureRead(self: string, dataDir: string): Promise<Measurement> {
  await measureInChild(self, 'read', dataDir); // warm-up: page cache, nothing recorded
  const reports: ChildReport[] = [];
  for (let r = 0; r < READ_RUNS; r++) reports.push(await measureInChild(self, 'read', dataDir));
  return {
    ...summarise(
      'read',
      reports.map((r) => r.samples[0]),
      Math.max(...reports.map((r) => r.peakRssMB)),
    ),
    images: reports[0].images,
    what: 'readCifar10 (5 training batches + test batch), fresh process per run',
  };
}

async function measureSearch(
  self: string,
  name: string,
  dataDir: string,
): Promise<{ m: Measurement; pixels: Pixel[] }> {
  const r = await measureInChild(self, name, dataDir);
  const m: Measurement = {
    ...summarise(name, r.samples, r.peakRssMB),
    warmup: SEARCH_WARMUP,
    firstRunSeconds: round(r.firstRunSeconds ?? 0, 4),
    threads: r.threads,
    images: r.images,
    rssAfterReadMB: round(r.rssAfterReadMB ?? 0, 1),
    searchPeakRssMB: round(r.searchPeakRssMB ?? 0, 1),
    datasetMB: round(r.datasetMB ?? 0, 1),
    stable: r.stable,
    pixels: r.pixels?.map((p) => [p.row, p.col, p.value]),
    what: 'datasetStatsParallel + selectPixels, k = 1, data in memory',
  };
  return { m, pixels: r.pixels ?? [] };
}

/** Runs `node cli protect` under /usr/bin/time (or the rss hook) and returns wall s, peak KiB. */
async function protectOnce(
  root: string,
  cli: string,
  dataDir: string,
): Promise<{ seconds: number; peakKiB: number }> {
  const tmp = await mkdtemp(join(os.tmpdir(), 'onepixel-bench-'));
  try {
    const rssFile = join(tmp, 'rss.txt');
    const out = join(tmp, 'out');
    const protectArgs = [
      cli,
      'protect',
      '--dataset',
      'cifar10',
      '--data-dir',
      dataDir,
      '--out',
      out,
      '--force',
    ];
    const useTime = existsSync('/usr/bin/time');
    const r = useTime
      ? await run('/usr/bin/time', ['-f', '%e %M', '-o', rssFile, process.execPath, ...protectArgs])
      : await run(
          process.execPath,
          ['--import', join(root, 'dist', 'bench', 'rss-hook.js'), ...protectArgs],
          { ...process.env, ONEPIXEL_BENCH_RSS_FILE: rssFile },
        );
    if (r.code !== 0) throw new Error(`protect failed (exit ${r.code}):\n${r.stderr}`);
    const text = (await readFile(rssFile, 'utf8')).trim();
    const peakKiB = Number(useTime ? text.split(/\s+/).pop() : text);
    return { seconds: r.seconds, peakKiB };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function measureProtect(root: string, cli: string, dataDir: string): Promise<Measurement> {
  const runs: Array<{ seconds: number; peakKiB: number }> = [];
  for (let r = 0; r < PROTECT_RUNS; r++) runs.push(await protectOnce(root, cli, dataDir));
  return {
    ...summarise(
      'protect-cifar',
      runs.map((r) => r.seconds),
      Math.max(...runs.map((r) => r.peakKiB)) / 1024,
    ),
    what:
      'node dist/src/cli/main.js protect --dataset cifar10 --force: process start to exit, ' +
      'read + search + write (train + test, CIFAR binary) to a temp dir',
    rssBy: existsSync('/usr/bin/time') ? '/usr/bin/time %M' : 'rss-hook (resourceUsage().maxRSS)',
  };
}

function python(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

function numpyVersion(): string | null {
  const r = spawnSync(python(), ['-c', 'import numpy; print(numpy.__version__)'], {
    encoding: 'utf8',
  });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function runPeer(root: string, dataDir: string, classes: number): Promise<PeerReport> {
  const script = join(root, 'bench', 'peer_ops_numpy.py');
  const r = await run(python(), [script, dataDir, '--classes', String(classes)]);
  if (r.code !== 0) throw new Error(`peer failed (exit ${r.code}):\n${r.stderr}`);
  return lastJsonLine<PeerReport>(r.stdout, 'peer');
}

function comparePixels(ours: Pixel[], peer: Pixel[]): string[] {
  const diffs: string[] = [];
  for (const p of peer) {
    const o = ours[p.label];
    const fmt = (x: Pixel) => `(${x.row},${x.col})=[${x.value.join(',')}]`;
    if (!o) diffs.push(`class ${p.label}: onepixel has no pixel`);
    else if (o.row !== p.row || o.col !== p.col || o.value.join() !== p.value.join())
      diffs.push(`class ${p.label}: onepixel ${fmt(o)}, peer ${fmt(p)}`);
  }
  return diffs;
}

function table(rows: Measurement[]): string {
  const head = [
    'measurement',
    'median s',
    'min s',
    'cold s',
    'runs',
    'peak RSS MB',
    'peer s',
    'ratio',
  ];
  const body = rows.map((m) => [
    m.name,
    m.seconds.toFixed(3),
    m.minSeconds.toFixed(3),
    typeof m.firstRunSeconds === 'number' ? m.firstRunSeconds.toFixed(3) : '',
    String(m.runs),
    m.peakRssMB.toFixed(0),
    typeof m.peerSeconds === 'number' ? m.peerSeconds.toFixed(2) : '',
    typeof m.ratio === 'number' ? `${m.ratio.toFixed(0)}×` : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

async function parent(argv: string[]): Promise<void> {
  const root = process.cwd();
  const self = fileURLToPath(import.meta.url);
  const quick = argv.includes('--quick');
  const peerClasses = Number(arg(argv, '--peer-classes') ?? CLASSES);
  if (!Number.isInteger(peerClasses) || peerClasses < 1 || peerClasses > CLASSES)
    throw new Error(`--peer-classes must be 1..${CLASSES}`);
  const dataDir = resolve(
    arg(argv, '--data-dir') ?? join(root, '..', 'shared', 'data', 'cifar-10-batches-bin'),
  );
  if (!existsSync(join(dataDir, 'data_batch_1.bin')))
    throw new Error(`${dataDir}: no CIFAR-10 binary batches (data_batch_1.bin …) there`);
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`${cli} not found: build first (npx tsc -p tsconfig.json)`);

  const emit = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
  const log = (s: string) => process.stderr.write(s + '\n');
  const cpus = os.cpus();
  const machine = {
    name: 'machine',
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryGB: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    numpy: numpyVersion(),
    /** 1-minute load average at the start: other work on the machine skews every number. */
    loadAverage1m: round(os.loadavg()[0], 2),
    dataDir,
    quick,
  };
  emit(machine);
  log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.totalMemoryGB} GB, ` +
      `node ${machine.node}, numpy ${machine.numpy ?? 'absent'}, load ${machine.loadAverage1m}`,
  );

  const rows: Measurement[] = [];
  log('measuring read …');
  rows.push(await measureRead(self, dataDir));
  log('measuring search-official …');
  const official = await measureSearch(self, 'search-official', dataDir);
  rows.push(official.m);
  log('measuring search-official-1thread …');
  const single = await measureSearch(self, 'search-official-1thread', dataDir);
  rows.push(single.m);
  log('measuring search-paper …');
  rows.push((await measureSearch(self, 'search-paper', dataDir)).m);
  log('measuring protect-cifar …');
  rows.push(await measureProtect(root, cli, dataDir));

  let mismatches: string[] = [];
  if (!quick) {
    log(`running the numpy peer (${peerClasses} of ${CLASSES} classes) …`);
    const peer = await runPeer(root, dataDir, peerClasses);
    const scale = CLASSES / peer.classesSearched;
    const peerSeconds = peer.seconds * scale;
    mismatches = comparePixels(official.pixels, peer.pixels);
    const ties = peer.pixels.filter((p) => p.tiesAtTop > 1).map((p) => p.label);
    for (const m of [official.m, single.m]) {
      Object.assign(m, {
        peer: 'bench/peer_ops_numpy.py (numpy transcription of the authors\u2019 official search)',
        peerSeconds: round(peerSeconds, 3),
        peerMeasuredSeconds: round(peer.seconds, 3),
        peerClassesSearched: peer.classesSearched,
        peerScaled: scale !== 1,
        peerPeakRssMB: round(peer.peakRssMB, 1),
        peerRuns: 1,
        ratio: round(peerSeconds / m.seconds, 1),
        pixelsMatch: mismatches.length === 0,
        pixelsCompared: peer.pixels.length,
        peerTiesAtTop: ties,
      });
    }
  }
  for (const m of rows) emit(m);

  const search = official.m.seconds;
  const protectRow = rows.find((m) => m.name === 'protect-cifar') as Measurement;
  const extraMB = (official.m.searchPeakRssMB as number) - (official.m.rssAfterReadMB as number);
  const targets = {
    name: 'targets',
    searchUnderHalfSecond: search < TARGET_SEARCH_S,
    protectUnderTwoSeconds: protectRow.seconds < TARGET_PROTECT_S,
    protectVsPeerSearch: quick
      ? null
      : round((official.m.peerSeconds as number) / protectRow.seconds, 1),
    searchExtraRssMB: round(extraMB, 1),
    datasetMB: official.m.datasetMB,
    loadAverage1mAtEnd: round(os.loadavg()[0], 2),
  };
  emit(targets);

  log('');
  log(table(rows));
  log('');
  log(
    `search target < ${TARGET_SEARCH_S} s: ${targets.searchUnderHalfSecond ? 'met' : 'NOT met'} ` +
      `(${search.toFixed(3)} s, ${official.m.threads} threads)`,
  );
  log(
    `read + search + write target < ${TARGET_PROTECT_S} s: ` +
      `${targets.protectUnderTwoSeconds ? 'met' : 'NOT met'} (${protectRow.seconds.toFixed(2)} s)`,
  );
  log(
    `memory: dataset ${official.m.datasetMB} MB in memory; RSS after read ${official.m.rssAfterReadMB} MB, ` +
      `highest sampled during search ${official.m.searchPeakRssMB} MB (+${extraMB.toFixed(1)} MB)`,
  );
  if (!quick) {
    const peerNote = official.m.peerScaled
      ? ` (measured ${String(official.m.peerMeasuredSeconds)} s on ${peerClasses} classes, scaled)`
      : '';
    log(
      `peer: ${String(official.m.peerSeconds)} s${peerNote}; onepixel is ${String(official.m.ratio)}× ` +
        `faster (${String(single.m.ratio)}× on one thread)`,
    );
    const whole = targets.protectVsPeerSearch as number;
    log(
      `whole protect (${protectRow.seconds.toFixed(2)} s, process start to exit) vs the peer's search ` +
        `alone: ${whole}× (target ≥ ${TARGET_PROTECT_VS_PEER}×: ${whole >= TARGET_PROTECT_VS_PEER ? 'met' : 'NOT met'})`,
    );
    if (mismatches.length === 0)
      log(`pixels: the peer's (row, col, value) equal onepixel's for all ${peerClasses} classes`);
    else {
      log('pixels DIFFER from the peer:\n  ' + mismatches.join('\n  '));
      process.exitCode = 1;
    }
  }
  if (!official.m.stable) {
    log('search-official chose different pixels in different runs');
    process.exitCode = 1;
  }
}

const argv = process.argv.slice(2);
const measure = arg(argv, '--measure');
const main = measure ? child(measure, argv[argv.indexOf(measure) + 1]) : parent(argv);
main.catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
