/**
 * The audit as the paper's Table 5: rows are training strategies, columns datasets, per model;
 * each dataset shows the final and the best-epoch clean-test accuracy (mean ± sd over seeds).
 */
import type { AuditCell } from '../matrix.js';
import { type CellSummary, formatStat, summarizeCells } from '../summary.js';

export interface TableLayout {
  models: string[];
  strategies: string[];
  datasets: string[];
}

export function cellOf(cells: AuditCell[], dataset: string, model: string, strategy: string) {
  return cells.find((c) => c.dataset === dataset && c.model === model && c.strategy === strategy);
}

export function summaryOf(
  s: CellSummary[],
  dataset: string,
  model: string,
  strategy: string,
): CellSummary | undefined {
  return s.find((c) => c.dataset === dataset && c.model === model && c.strategy === strategy);
}

/** What the numbers are, for the table's and the report's header. */
export function tableLegend(seeds: readonly number[]): string {
  const over =
    seeds.length > 1
      ? `Each value is the mean ± the sample standard deviation (n − 1) over ${seeds.length} seeds (${seeds.join(', ')}); (n = k) marks a value over the k of them whose cells are present.`
      : `One seed (${seeds.join(', ')}).`;
  return (
    'Clean-test accuracy (%). final: after the last epoch, as in the paper’s tables (with ' +
    'test-time augmentation where the recipe has it: fast94); best: the highest over the epochs, ' +
    'without it (a curve that rises then falls is the shortcut’s signature). ' +
    over
  );
}

/** A Markdown table of final and best-epoch clean-test accuracy (%), one block per model. */
export function markdownTable(
  cells: AuditCell[],
  t: TableLayout,
  seeds: readonly number[] = [0],
): string {
  const summaries = summarizeCells(cells);
  const out: string[] = [tableLegend(seeds), ''];
  if (summaries.some((c) => c.robust.n > 0))
    out.push(
      'Adversarially trained cells add (PGD-20 r): their accuracy under PGD-20 (ε = 8/255, step ' +
        '2/255, random start) on the first 1,000 clean test images, the evidence that ' +
        'adversarial training worked.',
      '',
    );
  for (const model of t.models) {
    out.push(`### ${model}: clean-test accuracy (%)`, '');
    out.push(`| strategy | ${t.datasets.map((d) => `${d} final | ${d} best`).join(' | ')} |`);
    out.push(`| --- | ${t.datasets.map(() => '--- | ---').join(' | ')} |`);
    for (const s of t.strategies) {
      const row = t.datasets.map((d) => {
        const c = summaryOf(summaries, d, model, s);
        const robust = c && c.robust.n > 0 ? ` (PGD-20 ${formatStat(c.robust, seeds.length)})` : '';
        return `${formatStat(c?.final, seeds.length)}${robust} | ${formatStat(c?.best, seeds.length)}`;
      });
      out.push(`| ${s} | ${row.join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
