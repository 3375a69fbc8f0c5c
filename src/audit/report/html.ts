/**
 * A self-contained HTML report: the accuracy table (final and best epoch, mean ± sd over seeds),
 * per-epoch clean-test and training accuracy curves (inline SVG, mean ± sd bands over seeds), the
 * protocol of every cell, and sample images, original beside protected, magnified with the
 * shortcut pixel outlined.
 */
import type { Dataset } from '../../data/dataset.js';
import { imageAt } from '../../data/dataset.js';
import type { Manifest } from '../../manifest.js';
import type { AuditCell } from '../matrix.js';
import { type CellSummary, formatStat, summarizeCells } from '../summary.js';
import { summaryOf, tableLegend, type TableLayout } from './table.js';
import { robustnessHtml } from './robustness.js';
import { accuracyGrid, datasetColour } from './svg.js';

function esc(s: string): string {
  return s.replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string,
  );
}

/**
 * One chart: accuracy (0–100 %) per epoch, a line per dataset (coloured by its place in the list:
 * {@link datasetColour}); `sd` adds a mean ± sd band.
 */
export function curveSvg(
  series: Array<{ name: string; values: number[]; sd?: Array<number | null> }>,
  title: string,
): string {
  const W = 420;
  const H = 200;
  // The legend sits right of the plot, where no line can cross it.
  const pad = { l: 36, r: 90, t: 22, b: 28 };
  const epochs = Math.max(1, ...series.map((s) => s.values.length));
  const x = (e: number) => pad.l + (W - pad.l - pad.r) * (epochs === 1 ? 0.5 : e / (epochs - 1));
  const y = (a: number) => pad.t + (H - pad.t - pad.b) * (1 - a);
  const grid = accuracyGrid(pad.l, W - pad.r, y);
  const lines = series
    .map((s, i) => {
      const pts = s.values.map((v, e) => `${x(e).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      const c = datasetColour(i);
      const sd = s.sd;
      const band =
        sd && sd.every((v) => v !== null) && sd.length === s.values.length && sd.length > 0
          ? `<polygon class="band" fill="${c}" fill-opacity="0.15" stroke="none" points="${[
              ...s.values.map((v, e) => `${x(e).toFixed(1)},${y(v + (sd[e] ?? 0)).toFixed(1)}`),
              ...s.values
                .map((v, e) => `${x(e).toFixed(1)},${y(v - (sd[e] ?? 0)).toFixed(1)}`)
                .reverse(),
            ].join(' ')}"/>`
          : '';
      return `${band}<polyline class="series" data-dataset="${esc(s.name)}" fill="none" stroke="${c}" stroke-width="2" points="${pts}"/><text x="${W - pad.r + 8}" y="${pad.t + 8 + 12 * i}" font-size="10" fill="${c}">${esc(s.name)}</text>`;
    })
    .join('');
  return `<svg class="curve" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(title)}"><text x="${pad.l}" y="14" font-size="12">${esc(title)}</text>${grid}${lines}<text x="${(pad.l + W - pad.r) / 2}" y="${H - 6}" font-size="10" text-anchor="middle">epoch (1–${epochs})</text></svg>`;
}

async function pngDataUri(ds: Dataset, i: number, scale: number): Promise<string> {
  const sharp = (await import('sharp')).default; // loaded only when a report is made
  const png = await sharp(Buffer.from(imageAt(ds, i)), {
    raw: { width: ds.width, height: ds.height, channels: ds.channels as 1 | 3 },
  })
    .resize(ds.width * scale, ds.height * scale, { kernel: 'nearest' })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Original and protected image of each class, the chosen pixels outlined. */
export async function samplesHtml(
  clean: Dataset,
  prot: Dataset,
  m: Manifest,
  scale = 6,
): Promise<string> {
  const rows: string[] = [];
  for (const cls of m.classes) {
    const i = prot.labels.indexOf(cls.label);
    if (i < 0) continue;
    const boxes = cls.pixels
      .map(
        (p) =>
          `<rect x="${p.col * scale}" y="${p.row * scale}" width="${scale}" height="${scale}" fill="none" stroke="#f0f" stroke-width="2"/>`,
      )
      .join('');
    const w = clean.width * scale;
    const h = clean.height * scale;
    const fig = async (ds: Dataset, label: string) =>
      `<figure><svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><image href="${await pngDataUri(ds, i, scale)}" width="${w}" height="${h}"/>${boxes}</svg><figcaption>${label}</figcaption></figure>`;
    const px = cls.pixels.map((p) => `(${p.row}, ${p.col}) = [${p.value.join(', ')}]`).join('; ');
    rows.push(
      `<div class="pair"><h4>${esc(cls.name)} — ${esc(px)}</h4>${await fig(clean, 'original')}${await fig(prot, 'protected')}</div>`,
    );
  }
  return rows.join('\n');
}

export interface ReportInput {
  title: string;
  cells: AuditCell[];
  layout: TableLayout;
  /** The seeds every cell was trained with. Default [0]. */
  seeds?: number[];
  /** Per protected dataset with a manifest: its samples section. */
  samples: Array<{ name: string; html: string }>;
  notes: string[];
}

/** The protocol of each (dataset, model, strategy): what its runs were trained with. */
function protocolTable(cells: AuditCell[], summaries: CellSummary[]): string {
  const rows = summaries.map((s) => {
    const c = cells.find(
      (x) => x.dataset === s.dataset && x.model === s.model && x.strategy === s.strategy,
    );
    const k = c?.results.config;
    if (!k) return '';
    const lr =
      k.schedule === 'multistep'
        ? `multistep ${k.lr}, ×${k.gamma} at ${k.milestones.join(', ')}`
        : k.schedule === 'onecycle'
          ? `onecycle, max ${k.lr}`
          : `${k.schedule} ${k.lr}`;
    const at = k.adversarial
      ? `PGD-${k.adversarial.steps}, ε ${(k.adversarial.epsilon * 255).toFixed(3)}/255, step ${(k.adversarial.step * 255).toFixed(3)}/255`
      : '—';
    const tds = [
      s.dataset,
      s.model,
      s.strategy,
      String(k.epochs),
      lr,
      `SGD m ${k.momentum}, wd ${k.weightDecay}`,
      String(k.batchSize),
      k.strategy,
      at,
      k.countermeasure ?? 'none',
      s.seeds.join(', '),
      c?.results.backend ?? '',
    ];
    return `<tr>${tds.map((t) => `<td>${esc(t)}</td>`).join('')}</tr>`;
  });
  const head = [
    'dataset',
    'model',
    'row',
    'epochs',
    'lr schedule',
    'optimiser',
    'batch',
    'augmentation',
    'adversarial',
    'countermeasure',
    'seeds',
    'backend',
  ];
  return `<div class="scroll"><table class="protocol"><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr>${rows.join('')}</table></div>`;
}

/** The epoch of the best accuracy, once when every seed agrees, else per seed. */
function bestEpochs(c: CellSummary | undefined): string {
  if (!c || c.bestEpoch.length === 0) return '';
  const same = c.bestEpoch.every((e) => e === c.bestEpoch[0]);
  const text = same ? `epoch ${c.bestEpoch[0]}` : `epochs ${c.bestEpoch.join(', ')}`;
  return ` <small class="epoch">(${text})</small>`;
}

export function reportHtml(r: ReportInput): string {
  const { layout, cells } = r;
  const seeds = r.seeds ?? [0];
  const summaries = summarizeCells(cells);
  const tables = layout.models
    .map((model) => {
      const head = layout.datasets
        .map((d) => `<th>${esc(d)} final</th><th>${esc(d)} best</th>`)
        .join('');
      const body = layout.strategies
        .map((s) => {
          const tds = layout.datasets
            .map((d) => {
              const c = summaryOf(summaries, d, model, s);
              const robust =
                c && c.robust.n > 0
                  ? `<br><small>PGD-20 ${esc(formatStat(c.robust, seeds.length))}</small>`
                  : '';
              return `<td>${esc(formatStat(c?.final, seeds.length))}${robust}</td><td>${esc(formatStat(c?.best, seeds.length))}${bestEpochs(c)}</td>`;
            })
            .join('');
          return `<tr><th>${esc(s)}</th>${tds}</tr>`;
        })
        .join('');
      return `<h3>${esc(model)}: clean-test accuracy (%)</h3><div class="scroll"><table class="accuracy"><tr><th>strategy</th>${head}</tr>${body}</table></div>`;
    })
    .join('\n');
  const series = (model: string, s: string, which: 'testCurve' | 'trainCurve') =>
    layout.datasets.map((d) => {
      const c = summaryOf(summaries, d, model, s)?.[which] ?? [];
      return { name: d, values: c.map((v) => v.mean), sd: c.map((v) => v.sd) };
    });
  const charts = layout.models
    .flatMap((model) =>
      layout.strategies.map(
        (s) =>
          `<div class="pair">${curveSvg(series(model, s, 'testCurve'), `${model}, ${s}: clean-test accuracy`)}${curveSvg(series(model, s, 'trainCurve'), `${model}, ${s}: training accuracy`)}</div>`,
      ),
    )
    .join('\n');
  const samples = r.samples.map((s) => `<h3>${esc(s.name)}</h3>${s.html}`).join('\n');
  const bands =
    seeds.length > 1
      ? ` Lines are the mean over the ${seeds.length} seeds, bands ± one sample standard deviation.`
      : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1300px}.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th:first-child{text-align:left}.accuracy td{white-space:nowrap}.protocol td,.protocol th{text-align:left;font-size:12px}.pair{display:inline-block;margin:0 1.5em 1em 0;vertical-align:top}figure{display:inline-block;margin:0 .5em 0 0}figcaption{text-align:center}svg{margin:.5em}h4{margin:.2em 0;font-weight:normal}</style>
</head><body>
<h1>${esc(r.title)}</h1>
${r.notes.map((n) => `<p>${esc(n)}</p>`).join('\n')}
<h2>Accuracy on the clean test set</h2>
<p>${esc(tableLegend(seeds))} In brackets: the epoch of the best accuracy${seeds.length > 1 ? ', per seed where they differ' : ''}.</p>
${tables}
${robustnessHtml(cells, layout)}
<h2>Per-epoch curves</h2>
<p>Clean-test accuracy (left) beside training accuracy on the (augmented, for adversarial training: attacked) training batches (right).${bands}</p>
${charts}
<h2>Protocol of each cell</h2>
${protocolTable(cells, summaries)}
<h2>Samples: original and protected (shortcut pixel outlined)</h2>
${samples}
</body></html>
`;
}
