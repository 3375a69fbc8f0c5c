/**
 * The audit's numbers per cell over its seeds: mean and sample standard deviation (n − 1) of the
 * final and of the best-epoch clean-test accuracy, and of the per-epoch curves.
 */
import type { AuditCell } from './matrix.js';

export interface Stat {
  mean: number;
  /** Sample standard deviation (n − 1); null for a single value. */
  sd: number | null;
  n: number;
}

/** Mean and sample standard deviation (divisor n − 1). */
export function meanSd(xs: readonly number[]): Stat {
  const n = xs.length;
  if (n === 0) return { mean: NaN, sd: null, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, sd: null, n };
  const ss = xs.reduce((a, x) => a + (x - mean) * (x - mean), 0);
  return { mean, sd: Math.sqrt(ss / (n - 1)), n };
}

export interface CellSummary {
  dataset: string;
  model: string;
  strategy: string;
  seeds: number[];
  /** Clean-test accuracy after the last epoch (what the paper's tables report). */
  final: Stat;
  /** The highest clean-test accuracy over the epochs of each seed's run. */
  best: Stat;
  /** Adversarial training: accuracy under PGD-20 (the seeds whose cells measured it). */
  robust: Stat;
  /** Per seed: the epoch (1-based) of its best accuracy. */
  bestEpoch: number[];
  /** Per epoch, over seeds: clean-test and training accuracy. */
  testCurve: Stat[];
  trainCurve: Stat[];
}

function curve(runs: number[][]): Stat[] {
  const epochs = Math.min(...runs.map((r) => r.length));
  return Array.from({ length: epochs }, (_, e) => meanSd(runs.map((r) => r[e])));
}

/** One summary per (dataset, model, strategy) over the seeds its cells were trained with. */
export function summarizeCells(cells: readonly AuditCell[]): CellSummary[] {
  const groups = new Map<string, AuditCell[]>();
  for (const c of cells) {
    const key = JSON.stringify([c.dataset, c.model, c.strategy]);
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups.values()].map((g) => {
    const tests = g.map((c) => c.results.testAccuracy);
    const best = tests.map((t) => Math.max(...t));
    return {
      dataset: g[0].dataset,
      model: g[0].model,
      strategy: g[0].strategy,
      seeds: g.map((c) => c.seed),
      final: meanSd(g.map((c) => c.results.finalTestAccuracy ?? NaN)),
      best: meanSd(best),
      robust: meanSd(g.flatMap((c) => c.results.finalRobustAccuracy ?? [])),
      bestEpoch: tests.map((t, i) => t.indexOf(best[i]) + 1),
      testCurve: curve(tests),
      trainCurve: curve(g.map((c) => c.results.trainAccuracy)),
    };
  });
}

/**
 * A percentage, with ± the sample sd when there are several seeds. Given the audit's seed count,
 * a value over fewer seeds (the other seeds' cells missing) says so: `59.56 (n = 1)`.
 */
export function formatStat(s: Stat | undefined, seeds = 0): string {
  if (!s || s.n === 0 || !Number.isFinite(s.mean)) return '—';
  const m = (100 * s.mean).toFixed(2);
  const text = s.sd === null ? m : `${m} ± ${(100 * s.sd).toFixed(2)}`;
  return s.n < seeds ? `${text} (n = ${s.n})` : text;
}
