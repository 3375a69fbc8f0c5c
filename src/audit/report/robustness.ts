/**
 * The robustness chart of an audit report: for each model and training strategy audited under
 * countermeasures, the final clean-test accuracy (y) per countermeasure (x, in the order given),
 * one line per protected dataset, and the clean data's own accuracy under the same countermeasure
 * as a dashed reference line. UEraser, a training countermeasure, is the standard chart's last
 * point where the audit has both. A protection holds where its line stays far below the reference.
 */
import type { AuditCell } from '../matrix.js';
import {
  countermeasureName,
  parseCountermeasure,
  TRAINING_COUNTERMEASURES,
} from '../../train/countermeasures.js';
import type { TableLayout } from './table.js';
import { accuracyGrid, datasetColour } from './svg.js';
import { meanSd, type Stat } from '../summary.js';

function esc(s: string): string {
  return s.replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string,
  );
}

/** A row name split into its strategy and countermeasure (`none` for a plain row). */
export function splitRow(row: string): { strategy: string; countermeasure: string } {
  const at = row.lastIndexOf('+');
  if (at > 0) {
    try {
      const c = countermeasureName(parseCountermeasure(row.slice(at + 1)));
      return { strategy: row.slice(0, at), countermeasure: c };
    } catch {
      // not a countermeasure: a strategy such as at+cutout
    }
  }
  return { strategy: row, countermeasure: 'none' };
}

export interface RobustnessSeries {
  name: string;
  /** Accuracy in [0, 1] per countermeasure (mean over seeds), null where the cell is missing. */
  values: Array<number | null>;
  /** Sample sd over seeds per countermeasure, drawn as ± whiskers; null for one seed. */
  sds?: Array<number | null>;
  reference: boolean;
}

/**
 * One chart's SVG: accuracy per countermeasure, a line per series, each series in its dataset's
 * colour ({@link datasetColour} of its place in the list, as the curves), the reference dashed.
 * Sized to be read: 12 px labels, at least 640 × 380 px.
 */
export function robustnessSvg(
  countermeasures: string[],
  series: RobustnessSeries[],
  title: string,
): string {
  // Wide enough for the title (about 7.5 px a character at 14 px) and the countermeasures.
  const pad = { l: 48, r: 170, t: 30, b: 100 };
  const W = Math.max(
    640,
    pad.l + pad.r + 80 * countermeasures.length,
    pad.l + Math.ceil(7.5 * title.length),
  );
  const H = 380;
  const n = countermeasures.length;
  const x = (i: number) => pad.l + (W - pad.l - pad.r) * (n === 1 ? 0.5 : i / (n - 1));
  const y = (a: number) => pad.t + (H - pad.t - pad.b) * (1 - a);
  const grid = accuracyGrid(pad.l, W - pad.r, y, 12);
  const labels = countermeasures
    .map(
      (c, i) =>
        `<text transform="translate(${x(i).toFixed(1)},${H - pad.b + 14}) rotate(40)" font-size="12">${esc(c)}</text>`,
    )
    .join('');
  const lines = series
    .map((s, k) => {
      const c = datasetColour(k);
      const pts = s.values
        .map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`))
        .filter((p): p is string => p !== null);
      const dots = pts
        .map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3.5" fill="${c}"/>`)
        .join('');
      const whiskers = s.values
        .map((v, i) => {
          const sd = s.sds?.[i] ?? null;
          if (v === null || sd === null) return '';
          const [lo, hi] = [y(Math.max(0, v - sd)), y(Math.min(1, v + sd))];
          return `<line class="sd" x1="${x(i).toFixed(1)}" x2="${x(i).toFixed(1)}" y1="${lo.toFixed(1)}" y2="${hi.toFixed(1)}" stroke="${c}" stroke-width="1.5"/>`;
        })
        .join('');
      const dash = s.reference ? ' stroke-dasharray="5,3"' : '';
      const cls = s.reference ? 'series reference' : 'series';
      return `<polyline class="${cls}" data-dataset="${esc(s.name)}" fill="none" stroke="${c}" stroke-width="2.5"${dash} points="${pts.join(' ')}"/>${dots}${whiskers}<text x="${W - pad.r + 10}" y="${pad.t + 18 * k + 10}" font-size="12" fill="${c}">${esc(s.name)}${s.reference ? ' (reference, dashed)' : ''}</text>`;
    })
    .join('');
  return `<svg class="robustness" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(title)}"><text x="${pad.l}" y="18" font-size="14">${esc(title)}</text>${grid}${labels}${lines}</svg>`;
}

/** Final clean-test accuracy of a cell over its seeds (mean, sample sd); null where none ran. */
function finalStat(cells: AuditCell[], dataset: string, model: string, row: string): Stat | null {
  const finals = cells
    .filter((c) => c.dataset === dataset && c.model === model && c.strategy === row)
    .map((c) => c.results.finalTestAccuracy)
    .filter((a): a is number => a !== null);
  return finals.length === 0 ? null : meanSd(finals);
}

/**
 * The report section: one chart per model and strategy that was audited under at least one
 * countermeasure; '' when there is none. The dataset named `clean` is the reference line.
 */
export function robustnessHtml(cells: AuditCell[], layout: TableLayout): string {
  const byStrategy = new Map<string, Array<{ row: string; countermeasure: string }>>();
  for (const row of layout.strategies) {
    const { strategy, countermeasure } = splitRow(row);
    const list = byStrategy.get(strategy) ?? [];
    list.push({ row, countermeasure });
    byStrategy.set(strategy, list);
  }
  // A training countermeasure's plain row (ueraser) is a point of the standard chart, when there
  // is one with transforms and the strategy has no countermeasure rows of its own.
  const standard = byStrategy.get('standard');
  if (standard?.some((r) => r.countermeasure !== 'none'))
    for (const name of TRAINING_COUNTERMEASURES) {
      const own = byStrategy.get(name);
      if (own?.length !== 1 || own[0].countermeasure !== 'none') continue;
      standard.push({ row: own[0].row, countermeasure: name });
      byStrategy.delete(name);
    }
  const charts: string[] = [];
  for (const model of layout.models)
    for (const [strategy, rows] of byStrategy) {
      if (!rows.some((r) => r.countermeasure !== 'none')) continue;
      const series = layout.datasets.map((d) => {
        const stats = rows.map((r) => finalStat(cells, d, model, r.row));
        return {
          name: d,
          reference: d === 'clean',
          values: stats.map((st) => st?.mean ?? null),
          sds: stats.map((st) => st?.sd ?? null),
        };
      });
      charts.push(
        robustnessSvg(
          rows.map((r) => r.countermeasure),
          series,
          `${model}, ${strategy}: clean-test accuracy (%) per countermeasure`,
        ),
      );
    }
  if (charts.length === 0) return '';
  return (
    '<h2>Robustness: accuracy per countermeasure</h2>\n<p>Clean-test accuracy after training on ' +
    'each dataset’s training images transformed by the countermeasure; the dashed line is the ' +
    'clean data under the same countermeasure; each dataset has the colour it has in the curves. Points are means over the seeds, whiskers ± one ' +
    'sample sd. A protection holds where its line stays far below the reference.</p>\n' +
    charts.join('\n')
  );
}
