/** The audit as the paper's Table 5: rows are training strategies, columns datasets, per model. */
import type { AuditCell } from '../matrix.js';

export interface TableLayout {
  models: string[];
  strategies: string[];
  datasets: string[];
}

function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '—' : (100 * x).toFixed(2);
}

export function cellOf(cells: AuditCell[], dataset: string, model: string, strategy: string) {
  return cells.find((c) => c.dataset === dataset && c.model === model && c.strategy === strategy);
}

/** A Markdown table of final clean-test accuracy (%), one block per model. */
export function markdownTable(cells: AuditCell[], t: TableLayout): string {
  const out: string[] = [];
  for (const model of t.models) {
    out.push(`### ${model}: clean-test accuracy (%)`, '');
    out.push(`| strategy | ${t.datasets.join(' | ')} |`);
    out.push(`| --- | ${t.datasets.map(() => '---').join(' | ')} |`);
    for (const s of t.strategies) {
      const row = t.datasets.map((d) => pct(cellOf(cells, d, model, s)?.results.finalTestAccuracy));
      out.push(`| ${s} | ${row.join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
