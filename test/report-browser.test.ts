/**
 * The audit report (src/audit/report/) opened in headless Chromium: built from hand-made cells
 * (three seeds, two models, three datasets, a strategy with countermeasures and one without), it
 * renders without console errors, its tables and charts are present with the expected number of
 * series and bands (counted in the DOM after layout, with each series' rendered size), it loads
 * nothing from the network, and a screenshot is written (its path printed). Each dataset has one
 * colour in every chart (curves and robustness chart alike); in a 1400-pixel-wide window the page
 * does not overflow sideways even with a table of ten datasets (tables scroll inside their box);
 * the robustness chart is at least 640 pixels wide with labels of 12 px or more.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AuditCell } from '../src/audit/matrix.js';
import { reportHtml, samplesHtml } from '../src/audit/report/html.js';
import type { Dataset } from '../src/data/dataset.js';
import type { Manifest } from '../src/manifest.js';
import type { TrainConfig } from '../src/train/loop.js';
import type { TrainResults } from '../src/train/results.js';
import { tempDirs } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const NO_CHROMIUM = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} not installed (apt-get install chromium; scripts/setup.sh does)`;
const tmp = tempDirs('onepixel-report-browser-');

const MODELS = ['lenet5', 'resnet18'] as const;
const DATASETS = ['clean', 'OPS', 'CIFAR-10-S'];
const ROWS = ['standard', 'standard+jpeg:10', 'standard+bdr:2', 'at'];
const SEEDS = [0, 1, 2];
const EPOCHS = 6;

function config(model: string, row: string, seed: number): TrainConfig {
  const at = row === 'at';
  return {
    model,
    strategy: 'standard',
    adversarial: at ? { epsilon: 8 / 255, step: 2 / 255, steps: 10 } : null,
    epochs: EPOCHS,
    batchSize: 128,
    lr: 0.1,
    momentum: 0.9,
    weightDecay: 5e-4,
    schedule: 'multistep',
    milestones: [3, 5],
    gamma: 0.1,
    seed,
    ...(row.includes('+') ? { countermeasure: row.split('+')[1] } : {}),
  } as TrainConfig;
}

/** Clean data learns; protected data shows the shortcut: training accuracy up, test down. */
function cell(model: string, dataset: string, row: string, seed: number): AuditCell {
  const shortcut = dataset !== 'clean' && row !== 'standard+bdr:2';
  const jitter = (e: number) => 0.025 * (((seed * 7 + e * 3) % 5) - 2);
  const shift = (dataset === 'OPS' ? 0 : 0.06) - (row === 'standard+jpeg:10' ? 0.05 : 0);
  const test = Array.from(
    { length: EPOCHS },
    (_, e) => (shortcut ? 0.3 - 0.035 * e : 0.4 + 0.07 * e) + shift + jitter(e),
  );
  const train = Array.from({ length: EPOCHS }, (_, e) =>
    Math.min(1, (shortcut ? 0.5 + 0.1 * e : 0.35 + 0.1 * e) + jitter(e)),
  );
  const results = {
    model,
    strategy: row,
    epochs: EPOCHS,
    backend: 'native',
    data: dataset,
    testAccuracy: test,
    finalTestAccuracy: test[EPOCHS - 1],
    trainAccuracy: train,
    trainLoss: train.map((a) => 1 - a),
    imagesPerSecond: 1000,
    seconds: 60,
    finished: true,
    config: config(model, row, seed),
    preset: 'quick',
    version: '0',
  } as TrainResults;
  return { dataset, model: model as AuditCell['model'], strategy: row, seed, folder: '', results };
}

/** A 2-class 8×8 RGB set and its copy with one pixel per class set, for the samples section. */
async function samples(): Promise<string> {
  const shape = { height: 8, width: 8, channels: 3 };
  const images = new Uint8Array(2 * 8 * 8 * 3).map((_, i) => (i * 37) % 256);
  const clean: Dataset = {
    ...shape,
    images,
    labels: Int32Array.from([0, 1]),
    classNames: ['cat', 'dog'],
  };
  const pixels = [
    { row: 1, col: 2, value: [255, 0, 0] },
    { row: 5, col: 6, value: [0, 0, 255] },
  ];
  const prot: Dataset = { ...clean, images: images.slice() };
  pixels.forEach((p, i) => prot.images.set(p.value, i * 192 + (p.row * 8 + p.col) * 3));
  const m = {
    classes: pixels.map((p, label) => ({
      label,
      name: clean.classNames[label],
      count: 1,
      pixels: [{ ...p, score: 1 }],
    })),
  } as unknown as Manifest;
  return samplesHtml(clean, prot, m);
}

/** Runs after layout: counts what rendered (non-zero boxes) and collects page errors. */
const PROBE = `<script>
window.__errors = [];
window.addEventListener('error', (e) => window.__errors.push(String(e.message || e.target && e.target.outerHTML)), true);
window.addEventListener('load', () => {
  const drawn = (el) => { const b = el.getBBox(); return b.width > 0 || b.height > 0; };
  const charts = (sel) => [...document.querySelectorAll(sel)].map((svg) => ({
    title: svg.getAttribute('aria-label'),
    series: svg.querySelectorAll('polyline.series').length,
    drawnSeries: [...svg.querySelectorAll('polyline.series')].filter(drawn).length,
    reference: svg.querySelectorAll('polyline.reference').length,
    bands: [...svg.querySelectorAll('polygon.band')].filter((b) => b.getBBox().width * b.getBBox().height > 0).length,
    width: svg.getBoundingClientRect().width,
    colours: [...svg.querySelectorAll('polyline.series')].map((l) => [l.getAttribute('data-dataset'), l.getAttribute('stroke')]),
    minFont: Math.min(...[...svg.querySelectorAll('text')].map((t) => parseFloat(getComputedStyle(t).fontSize))),
  }));
  const out = {
    errors: window.__errors,
    accuracyTables: [...document.querySelectorAll('table.accuracy')].map((t) => t.rows.length),
    protocolRows: document.querySelectorAll('table.protocol tr').length,
    curves: charts('svg.curve'),
    robustness: charts('svg.robustness'),
    sampleImages: [...document.querySelectorAll('svg image')].filter((i) => i.getBBox().width > 0).length,
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    viewport: document.documentElement.clientWidth,
    tables: [...document.querySelectorAll('table')].map((t) => ({
      box: t.parentElement.getBoundingClientRect().right,
      scrolls: t.parentElement.scrollWidth > t.parentElement.clientWidth,
    })),
  };
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.append(pre);
});
</script>`;

interface ChartProbe {
  title: string;
  series: number;
  drawnSeries: number;
  reference: number;
  bands: number;
  width: number;
  colours: Array<[string, string]>;
  minFont: number;
}
interface Probe {
  errors: string[];
  accuracyTables: number[];
  protocolRows: number;
  curves: ChartProbe[];
  robustness: ChartProbe[];
  sampleImages: number;
  overflow: number;
  viewport: number;
  tables: Array<{ box: number; scrolls: boolean }>;
}

function chromium(file: string, extra: string[], profile: string) {
  const r = spawnSync(
    CHROMIUM,
    [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--enable-logging=stderr',
      '--v=0',
      `--user-data-dir=${profile}`,
      ...extra,
      `file://${file}`,
    ],
    { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 },
  );
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `chromium exited ${r.status}:\n${r.stderr.slice(-2000)}`);
  return r;
}

/** The page's console messages and uncaught exceptions, from Chromium's stderr log. */
function consoleLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /:CONSOLE[:(]|Uncaught/.test(l));
}

function probeOf(dom: string): Probe {
  const m = /<pre id="probe">(.*?)<\/pre>/s.exec(dom);
  assert.ok(m, 'the probe script did not run');
  const json = m[1]
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
  return JSON.parse(json.replace(/&amp;/g, '&')) as Probe;
}

describe('audit report in headless Chromium', { skip: NO_CHROMIUM }, () => {
  it('sees a console error and an uncaught exception when a page has them (the check can fail)', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'bad.html');
    await writeFile(
      file,
      '<!doctype html><p>x</p><script>console.error("probe-error"); null.f();</script>',
    );
    const lines = consoleLines(chromium(file, ['--dump-dom'], path.join(dir, 'p')).stderr);
    assert.ok(
      lines.some((l) => l.includes('probe-error')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.includes('Uncaught')),
      lines.join('\n'),
    );
  });

  it('renders tables, curves with seed bands, the countermeasure chart and samples, offline', async () => {
    const cells = MODELS.flatMap((m) =>
      DATASETS.flatMap((d) => ROWS.flatMap((r) => SEEDS.map((s) => cell(m, d, r, s)))),
    );
    const html = reportHtml({
      title: 'onepixel audit (browser test)',
      cells,
      layout: { models: [...MODELS], strategies: ROWS, datasets: DATASETS },
      seeds: SEEDS,
      samples: [{ name: 'OPS', html: await samples() }],
      notes: ['Hand-made cells: three seeds, two countermeasures.'],
    });
    // Offline: nothing is fetched (the SVG namespace is an identifier, not a fetch).
    const urls = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)].map((m) => m[1]);
    assert.ok(urls.length >= 4, 'the sample images are there');
    for (const u of urls) assert.match(u, /^data:image\/png;base64,/, u);
    assert.ok(!/@import|url\(/.test(html), 'no stylesheet fetches');

    const dir = await tmp();
    const file = path.join(dir, 'report.html');
    await writeFile(file, html.replace('</head>', `${PROBE}</head>`));
    const profile = path.join(dir, 'profile');
    const dump = chromium(file, ['--dump-dom'], profile);
    assert.deepEqual(consoleLines(dump.stderr), [], 'console messages');
    const p = probeOf(dump.stdout);
    assert.deepEqual(p.errors, []);

    // One accuracy table per model: a header row and a row per strategy.
    assert.deepEqual(p.accuracyTables, [1 + ROWS.length, 1 + ROWS.length]);
    // The protocol: a header and a row per (dataset, model, row).
    assert.equal(p.protocolRows, 1 + DATASETS.length * MODELS.length * ROWS.length);
    // Per model and row: clean-test and training curves, a line and a band per dataset.
    assert.equal(p.curves.length, MODELS.length * ROWS.length * 2);
    const titles = MODELS.flatMap((m) =>
      ROWS.flatMap((r) => [`${m}, ${r}: clean-test accuracy`, `${m}, ${r}: training accuracy`]),
    );
    assert.deepEqual(
      p.curves.map((c) => c.title),
      titles,
    );
    for (const c of p.curves) {
      assert.equal(c.series, DATASETS.length, c.title);
      assert.equal(c.drawnSeries, DATASETS.length, c.title);
      assert.equal(c.bands, DATASETS.length, `${c.title}: a mean ± sd band per dataset`);
      assert.equal(c.reference, 0, c.title);
      assert.equal(c.width, 420, c.title);
    }
    // Countermeasures: one chart per model for `standard` (none, jpeg:10, bdr:2); `at` has none.
    assert.deepEqual(
      p.robustness.map((c) => [c.title, c.series, c.drawnSeries, c.reference]),
      MODELS.map((m) => [
        `${m}, standard: clean-test accuracy (%) per countermeasure`,
        DATASETS.length,
        DATASETS.length,
        1,
      ]),
    );
    // One colour per dataset over every chart; the robustness chart large enough to read.
    const colours = new Map<string, Set<string>>();
    for (const c of [...p.curves, ...p.robustness])
      for (const [d, col] of c.colours) colours.set(d, (colours.get(d) ?? new Set()).add(col));
    assert.deepEqual([...colours.keys()].sort(), [...DATASETS].sort());
    for (const [d, set] of colours)
      assert.equal(set.size, 1, `${d}: colours ${[...set].join(', ')}`);
    assert.equal(new Set([...colours.values()].map((v) => [...v][0])).size, DATASETS.length);
    for (const c of p.robustness) {
      assert.ok(c.width >= 640, `${c.title}: ${c.width} px wide`);
      assert.ok(c.minFont >= 12, `${c.title}: ${c.minFont} px labels`);
    }
    // Best epoch: clean rises to the last epoch; OPS under `standard` peaks early, by hand from
    // the jitter 0.025·((7·seed + 3·epoch) mod 5 − 2): seed 0 at epoch 2, seeds 1 and 2 at 1.
    assert.ok(dump.stdout.includes('<small class="epoch">(epoch 6)</small>'));
    assert.ok(dump.stdout.includes('<small class="epoch">(epochs 2, 1, 1)</small>'));
    // Two classes, original and protected.
    assert.equal(p.sampleImages, 4);
    for (const t of ['final', 'best', '±', 'PGD-10, ε 8.000/255', 'jpeg:10', '0, 1, 2'])
      assert.ok(dump.stdout.includes(t), t);

    // Outside the temp folders (removed after the tests), so that it can be looked at.
    const shot = path.join(os.tmpdir(), 'onepixel-report-browser.png');
    await rm(shot, { force: true });
    const r = chromium(file, [`--screenshot=${shot}`, '--window-size=1280,2000'], profile);
    assert.deepEqual(consoleLines(r.stderr), []);
    assert.ok(existsSync(shot), 'screenshot written');
    console.log(`report screenshot: ${shot}`);
  });

  it('fits a 1400-pixel-wide window: a table of ten datasets scrolls inside its box', async () => {
    const many = Array.from({ length: 10 }, (_, i) => (i === 0 ? 'clean' : `protected-set-${i}`));
    const cells = many.flatMap((d) =>
      ROWS.flatMap((r) =>
        SEEDS.map((s) => ({
          ...cell('lenet5', d === 'clean' ? 'clean' : 'OPS', r, s),
          dataset: d,
        })),
      ),
    );
    const html = reportHtml({
      title: 'ten datasets',
      cells,
      layout: { models: ['lenet5'], strategies: ROWS, datasets: many },
      seeds: SEEDS,
      samples: [],
      notes: [],
    });
    const dir = await tmp();
    const file = path.join(dir, 'report.html');
    await writeFile(file, html.replace('</head>', `${PROBE}</head>`));
    const profile = path.join(dir, 'profile');
    const dump = chromium(file, ['--dump-dom', '--window-size=1400,1000'], profile);
    assert.deepEqual(consoleLines(dump.stderr), []);
    const p = probeOf(dump.stdout);
    // 1400 less the vertical scrollbar, if any.
    assert.ok(p.viewport > 1350 && p.viewport <= 1400, `viewport ${p.viewport}`);
    assert.ok(p.overflow <= 0, `the page is ${p.overflow} px wider than the window`);
    for (const t of p.tables) assert.ok(t.box <= p.viewport, `a table's box ends at ${t.box} px`);
    assert.ok(p.tables[0].scrolls, 'the 21-column accuracy table scrolls in its box');
    const shot = path.join(os.tmpdir(), 'onepixel-report-1400.png');
    await rm(shot, { force: true });
    chromium(file, [`--screenshot=${shot}`, '--window-size=1400,1400'], profile);
    console.log(`report screenshot (1400 px): ${shot}`);
  });

  it('draws no bands with one seed', async () => {
    const cells = DATASETS.map((d) => cell('lenet5', d, 'standard', 0));
    const html = reportHtml({
      title: 'one seed',
      cells,
      layout: { models: ['lenet5'], strategies: ['standard'], datasets: DATASETS },
      samples: [],
      notes: [],
    });
    const dir = await tmp();
    const file = path.join(dir, 'report.html');
    await writeFile(file, html.replace('</head>', `${PROBE}</head>`));
    const dump = chromium(file, ['--dump-dom'], path.join(dir, 'profile'));
    assert.deepEqual(consoleLines(dump.stderr), []);
    const p = probeOf(dump.stdout);
    assert.deepEqual(
      p.curves.map((c) => [c.drawnSeries, c.bands]),
      [
        [3, 0],
        [3, 0],
      ],
    );
    assert.deepEqual(p.robustness, []);
  });
});
